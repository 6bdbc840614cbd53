#include "redis/resp.hpp"

#include <hiredis/hiredis.h>

#include <stdexcept>

namespace dlock::detail::redis {
namespace {

RespValue convert(const redisReply* r) {
  RespValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RespValue::Type::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RespValue::Type::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RespValue::Type::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RespValue::Type::integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RespValue::Type::array;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      v.type = RespValue::Type::nil;
  }
  return v;
}

}  // namespace

std::string format_command(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* out = nullptr;
  int n = redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0 || out == nullptr) throw std::bad_alloc();
  std::string s(out, static_cast<std::size_t>(n));
  redisFreeCommand(out);
  return s;
}

struct RespParser::Impl {
  redisReader* reader = redisReaderCreate();
  ~Impl() { redisReaderFree(reader); }
};

RespParser::RespParser() : impl_(std::make_unique<Impl>()) {
  if (!impl_->reader) throw std::bad_alloc();
}
RespParser::~RespParser() = default;

void RespParser::feed(const char* data, std::size_t size) {
  if (redisReaderFeed(impl_->reader, data, size) != REDIS_OK) {
    throw std::runtime_error("RESP reader: cannot buffer input");
  }
}

std::optional<RespValue> RespParser::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(impl_->reader, &raw) != REDIS_OK) {
    throw std::runtime_error(std::string("malformed RESP: ") + impl_->reader->errstr);
  }
  if (raw == nullptr) return std::nullopt;
  auto* reply = static_cast<redisReply*>(raw);
  RespValue v = convert(reply);
  freeReplyObject(reply);
  return v;
}

}  // namespace dlock::detail::redis
