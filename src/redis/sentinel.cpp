#include "redis/sentinel.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <memory>

namespace dlock::detail::redis {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

ReplyPtr command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data())));
}

}  // namespace

SentinelLocator::SentinelLocator(std::vector<Address> sentinels, std::string master,
                                 std::string user, std::string password,
                                 std::chrono::milliseconds timeout)
    : sentinels_(std::move(sentinels)),
      master_(std::move(master)),
      user_(std::move(user)),
      password_(std::move(password)),
      timeout_(timeout) {}

bool SentinelLocator::locate(Address& out, std::string& error) {
  std::lock_guard lk(mu_);
  const auto per_try = std::max<std::chrono::milliseconds>(
      timeout_ / static_cast<long>(std::max<std::size_t>(1, sentinels_.size())),
      std::chrono::milliseconds(100));
  timeval tv{static_cast<time_t>(per_try.count() / 1000),
             static_cast<suseconds_t>((per_try.count() % 1000) * 1000)};
  error.clear();
  for (std::size_t i = 0; i < sentinels_.size(); ++i) {
    const Address& s = sentinels_[i];
    const std::string where = s.host + ":" + std::to_string(s.port);
    ContextPtr c(redisConnectWithTimeout(s.host.c_str(), s.port, tv));
    if (!c || c->err) {
      error += (error.empty() ? "" : "; ") + where + ": " + (c ? c->errstr : "out of memory");
      continue;
    }
    redisSetTimeout(c.get(), tv);
    if (!password_.empty()) {
      auto r = user_.empty() ? command(c.get(), {"AUTH", password_})
                             : command(c.get(), {"AUTH", user_, password_});
      if (!r || r->type == REDIS_REPLY_ERROR) {
        error += (error.empty() ? "" : "; ") + where + ": AUTH refused";
        continue;
      }
    }
    auto r = command(c.get(), {"SENTINEL", "get-master-addr-by-name", master_});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      error += (error.empty() ? "" : "; ") + where + ": " +
               (!r                             ? std::string(c->errstr)
                : r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                               : "does not know master '" + master_ + "'");
      continue;
    }
    out.host.assign(r->element[0]->str, r->element[0]->len);
    out.port = static_cast<std::uint16_t>(std::stoi(std::string(r->element[1]->str)));
    std::rotate(sentinels_.begin(), sentinels_.begin() + static_cast<long>(i), sentinels_.end());
    return true;
  }
  if (error.empty()) error = "no sentinels";
  return false;
}

}  // namespace dlock::detail::redis
