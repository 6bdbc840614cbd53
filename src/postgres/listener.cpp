#include "postgres/listener.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "dlock/error.hpp"
#include "postgres/statements.hpp"

namespace dlock::detail::postgres {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// How long a channel nobody uses stays listened, and how many such channels are kept.
constexpr auto kLinger = 30s;
constexpr std::size_t kMaxIdle = 1024;
// An idle connection is checked this often (an empty query) so a dead one is found.
constexpr auto kHeartbeat = 10s;
// How often the long-freed rows are deleted (the first time soon after connecting).
constexpr auto kCleanUpEvery = 10min;

}  // namespace

Listener::Listener(ConnectParams params, Sql sql)
    : params_(std::move(params)), sql_(std::move(sql)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

Listener::~Listener() {
  close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Listener::wake() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void Listener::start_locked() {
  if (started_ || closed_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

std::shared_ptr<Listener::Channel> Listener::join(const std::string& name) {
  std::shared_ptr<Channel> ch;
  bool need = false;
  {
    std::lock_guard lk(mu_);
    auto& slot = channels_[name];
    if (!slot) slot = std::make_shared<Channel>(name);
    ch = slot;
    ch->refs++;
    need = !ch->listening || ch->pending == Channel::Pending::unlisten;
    start_locked();
  }
  if (need) wake();
  return ch;
}

void Listener::defer_release(clock::time_point when, std::string key, std::string token,
                             std::string channel) {
  std::lock_guard lk(mu_);
  undos_.push_back({when, std::move(key), std::move(token), std::move(channel)});
  start_locked();
}

std::shared_ptr<Listener::Channel> Listener::try_join(const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = channels_.find(name);
  if (it == channels_.end() || !it->second->listening ||
      it->second->pending == Channel::Pending::unlisten) {
    return nullptr;
  }
  it->second->refs++;
  return it->second;
}

void Listener::leave(const std::shared_ptr<Channel>& ch) noexcept {
  std::lock_guard lk(mu_);
  if (--ch->refs == 0) ch->idle_since = clock::now();
}

bool Listener::wait_listening(Channel& ch, clock::time_point until, const std::stop_token& stop) {
  std::unique_lock lk(mu_);
  return ch.changed.wait_until(lk, stop, until, [&] { return ch.listening || down_ || closed_; }) &&
         ch.listening;
}

bool Listener::listening(const Channel& ch) {
  std::lock_guard lk(mu_);
  return ch.listening;
}

std::uint64_t Listener::version(const Channel& ch) {
  std::lock_guard lk(mu_);
  return ch.version;
}

bool Listener::wait_change(Channel& ch, std::uint64_t seen, clock::time_point until,
                           const std::stop_token& stop) {
  std::unique_lock lk(mu_);
  return ch.changed.wait_until(lk, stop, until, [&] { return ch.version != seen; });
}

std::shared_ptr<Listener::Channel> Listener::add_holder(const std::string& token,
                                                        GrantState* grant) {
  auto ch = join(sql_.holders_channel);
  std::lock_guard lk(mu_);
  holders_[token] = grant;
  return ch;
}

void Listener::remove_holder(const std::string& token,
                             const std::shared_ptr<Channel>& ch) noexcept {
  {
    std::lock_guard lk(mu_);
    holders_.erase(token);
  }
  leave(ch);
}

void Listener::close() noexcept {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
    // Waiters wake and find the store object closed, rather than sleep out their backoff.
    for (auto& [name, ch] : channels_) {
      ch->version++;
      ch->changed.notify_all();
    }
  }
  stop_.request_stop();
  wake();
  if (thread_.joinable()) thread_.join();
}

void Listener::run() {
  while (true) {
    {
      std::lock_guard lk(mu_);
      if (closed_) break;
    }
    step();
  }
  conn_.reset();
}

void Listener::sleep_for(milliseconds d) {
  pollfd p{wake_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(d.count())) > 0) {
    std::uint64_t v;
    [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
  }
}

bool Listener::connect_once() {
  try {
    conn_ = Connection::connect(params_, Context::with_stop(stop_.get_token()), "", "listen");
  } catch (const Error&) {
    std::lock_guard lk(mu_);
    down_ = true;
    for (auto& [name, ch] : channels_) ch->changed.notify_all();
    return false;
  }
  busy_ = false;
  last_io_ = clock::now();
  if (next_clean_up_ == clock::time_point{}) next_clean_up_ = last_io_ + 5s;
  std::lock_guard lk(mu_);
  down_ = false;
  return true;
}

void Listener::drop_connection() noexcept {
  conn_.reset();
  busy_ = false;
  batch_.clear();
  std::lock_guard lk(mu_);
  // Waiters keep waiting (bounded by their backoff): retrying now would only meet the same
  // outage. The LISTEN after reconnecting wakes them, since a release may have been missed.
  for (auto& [name, ch] : channels_) {
    ch->listening = false;
    ch->pending = Channel::Pending::none;
    ch->changed.notify_all();
  }
}

void Listener::send_pending() {
  if (busy_) return;
  std::string sql;
  const auto now = clock::now();
  {
    std::lock_guard lk(mu_);
    // Idle channels beyond the limit: the oldest are let go first.
    std::vector<Channel*> idle;
    for (auto& [name, ch] : channels_) {
      if (ch->refs == 0 && ch->listening) idle.push_back(ch.get());
    }
    if (idle.size() > kMaxIdle) {
      std::sort(idle.begin(), idle.end(),
                [](auto* a, auto* b) { return a->idle_since < b->idle_since; });
      for (std::size_t i = 0; i < idle.size() - kMaxIdle; ++i) {
        idle[i]->idle_since = clock::time_point::min();
      }
    }
    for (auto it = channels_.begin(); it != channels_.end();) {
      Channel& ch = *it->second;
      const bool wanted = ch.refs > 0 || (ch.listening && now - ch.idle_since < kLinger);
      if (ch.pending == Channel::Pending::none) {
        if (wanted && !ch.listening) {
          sql += "LISTEN " + ch.name + ";";
          ch.pending = Channel::Pending::listen;
          batch_.push_back(it->second);
        } else if (!wanted && ch.listening) {
          sql += "UNLISTEN " + ch.name + ";";
          ch.pending = Channel::Pending::unlisten;
          batch_.push_back(it->second);
        } else if (!wanted && ch.refs == 0) {
          it = channels_.erase(it);
          continue;
        }
      }
      ++it;
    }
  }
  if (sql.empty()) {
    // A due undo goes alone, with parameters (no quoting of names).
    Undo undo;
    {
      std::lock_guard lk(mu_);
      auto it = std::find_if(undos_.begin(), undos_.end(), [&](auto& u) { return u.when <= now; });
      if (it != undos_.end()) {
        undo = std::move(*it);
        undos_.erase(it);
      }
    }
    if (!undo.key.empty()) {
      const char* values[] = {undo.key.c_str(), undo.token.c_str(), undo.channel.c_str()};
      if (!PQsendQueryParams(conn_->native(), sql_.release.c_str(), 3, nullptr, values, nullptr,
                             nullptr, 0)) {
        drop_connection();
        return;
      }
      busy_ = true;
      batch_failed_ = false;
      sent_at_ = now;
      return;
    }
  }
  if (sql.empty() && now >= next_clean_up_) {
    sql = sql_.clean_up;
    next_clean_up_ = now + kCleanUpEvery;
  }
  if (sql.empty() && now - last_io_ >= kHeartbeat) sql = ";";  // An empty query.
  if (sql.empty()) return;
  if (!PQsendQuery(conn_->native(), sql.c_str())) {
    drop_connection();
    return;
  }
  busy_ = true;
  batch_failed_ = false;
  sent_at_ = now;
}

void Listener::dispatch(const char* channel, const char* payload) {
  std::lock_guard lk(mu_);
  if (channel == sql_.holders_channel) {
    // A force release names the token it removed: tell that grant, if it is ours.
    auto h = holders_.find(payload != nullptr ? payload : "");
    if (h != holders_.end()) h->second->report_lost();
    return;
  }
  auto it = channels_.find(std::string_view(channel));
  if (it == channels_.end()) return;
  it->second->version++;
  it->second->changed.notify_all();
}

void Listener::read_input() {
  PGconn* c = conn_->native();
  if (!PQconsumeInput(c)) {
    drop_connection();
    return;
  }
  last_io_ = clock::now();
  while (busy_ && !PQisBusy(c)) {
    PGresult* r = PQgetResult(c);
    if (r == nullptr) {
      // The batch is done: its LISTENs and UNLISTENs took effect (or none did).
      busy_ = false;
      std::lock_guard lk(mu_);
      // A refused batch (one transaction) changed nothing: its channels are sent again.
      for (auto& ch : batch_) {
        if (!batch_failed_) {
          ch->listening = ch->pending == Channel::Pending::listen;
          if (ch->listening) ch->version++;  // A release before the LISTEN: retry once.
        }
        ch->pending = Channel::Pending::none;
        ch->changed.notify_all();
      }
      batch_.clear();
      break;
    }
    const auto st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) batch_failed_ = true;
    PQclear(r);
  }
  while (PGnotify* n = PQnotifies(c)) {
    dispatch(n->relname, n->extra);
    PQfreemem(n);
  }
  if (PQstatus(c) == CONNECTION_BAD) drop_connection();
}

void Listener::step() {
  if (!conn_) {
    if (!connect_once()) {
      sleep_for(backoff_);
      backoff_ = std::min<milliseconds>(backoff_ * 2, 2s);
      return;
    }
    backoff_ = 100ms;
  }
  send_pending();
  if (!conn_) return;
  PGconn* c = conn_->native();
  short events = POLLIN;
  if (PQflush(c) == 1) events |= POLLOUT;
  pollfd fds[2] = {{PQsocket(c), events, 0}, {wake_fd_, POLLIN, 0}};
  ::poll(fds, 2, 1000);
  if (fds[1].revents != 0) {
    std::uint64_t v;
    [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof v);
  }
  if (fds[0].revents != 0) read_input();
  if (conn_ && busy_ && clock::now() - sent_at_ > params_.request_timeout) {
    drop_connection();  // No answer in time: the connection is dead or the server stuck.
  }
}

}  // namespace dlock::detail::postgres
