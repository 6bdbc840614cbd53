#include "redis/connection_fsm.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "redis/errors.hpp"

namespace dlock::detail::redis {
namespace {

using std::chrono::milliseconds;

std::string where(const Address& a) { return a.host + ":" + std::to_string(a.port); }

std::string wire_of(const std::vector<std::vector<std::string>>& commands) {
  std::string out;
  for (auto& c : commands) out += format_command(std::vector<std::string_view>(c.begin(), c.end()));
  return out;
}

std::vector<std::string> auth_command(const std::string& user, const std::string& password) {
  if (user.empty()) return {"AUTH", password};
  return {"AUTH", user, password};
}

}  // namespace

ConnectionFsm::ConnectionFsm(ConnectionOptions options) : opts_(std::move(options)) {}

std::vector<std::vector<std::string>> ConnectionFsm::handshake_commands(
    const ConnectionOptions& o) {
  std::vector<std::vector<std::string>> cmds;
  if (o.has_password) cmds.push_back(auth_command(o.user, o.password));
  if (o.db != 0 && !o.subscriber) cmds.push_back({"SELECT", std::to_string(o.db)});
  if (o.sentinels) cmds.push_back({"ROLE"});
  cmds.push_back({"CLIENT", "SETNAME", kClientName});
  cmds.push_back({"PING"});
  return cmds;
}

ConnectionFsm::Step ConnectionFsm::start(clock::time_point now) {
  phase_ = Phase::idle;
  parser_.reset();
  if (now < retry_at_) {
    Step s;
    s.kind = Step::Kind::wait;
    s.deadline = retry_at_;
    return s;
  }
  if (!opts_.sentinels) return connect_node(Address{opts_.host, opts_.port}, now);
  order_ = opts_.sentinels->order();
  next_ = 0;
  lookup_errors_.clear();
  return next_sentinel(now);
}

ConnectionFsm::Step ConnectionFsm::connect_step(const Address& target,
                                                clock::time_point deadline) const {
  Step s;
  s.kind = Step::Kind::connect;
  s.deadline = deadline;
  s.target = target;
  s.tls = opts_.tls != nullptr;
  s.tls_name = opts_.tls_name.empty() ? target.host : opts_.tls_name;
  return s;
}

// Each sentinel gets a share of the connect timeout (at least 100 ms), so that the lookup
// as a whole is bounded by about one connect timeout.
ConnectionFsm::Step ConnectionFsm::next_sentinel(clock::time_point now) {
  if (next_ >= order_.size()) {
    return fail(Failure{errc::unavailable,
                        "sentinel: " + (lookup_errors_.empty() ? "no sentinels" : lookup_errors_)},
                now);
  }
  asked_ = order_[next_++];
  phase_ = Phase::lookup;
  share_ = std::max<milliseconds>(
      opts_.connect_timeout / static_cast<long>(std::max<std::size_t>(1, order_.size())),
      milliseconds(100));
  deadline_ = now + share_;
  return connect_step(asked_, deadline_);
}

ConnectionFsm::Step ConnectionFsm::connect_node(const Address& node, clock::time_point now) {
  phase_ = Phase::node;
  deadline_ = now + opts_.connect_timeout;
  return connect_step(node, deadline_);
}

ConnectionFsm::Step ConnectionFsm::sentinel_trouble(const std::string& what,
                                                    clock::time_point now) {
  lookup_errors_ += (lookup_errors_.empty() ? "" : "; ") + where(asked_) + ": " + what;
  return next_sentinel(now);
}

ConnectionFsm::Step ConnectionFsm::fail(Failure why, clock::time_point now) {
  phase_ = Phase::idle;
  parser_.reset();
  ++failures_;
  const auto delay = milliseconds(50) * (1 << std::min(failures_ - 1, 6));
  retry_at_ = now + std::min<milliseconds>(delay, milliseconds(2000));
  Step s;
  s.kind = Step::Kind::failed;
  s.failure = std::move(why);
  return s;
}

ConnectionFsm::Step ConnectionFsm::exchange(std::vector<std::vector<std::string>> commands) {
  parser_.emplace();
  awaited_.clear();
  for (auto& c : commands) awaited_.push_back(c[0]);
  answered_ = 0;
  Step s;
  s.kind = Step::Kind::write;
  s.deadline = deadline_;
  s.wire = wire_of(commands);
  return s;
}

ConnectionFsm::Step ConnectionFsm::on_connected(clock::time_point now) {
  if (phase_ == Phase::lookup) {
    std::vector<std::vector<std::string>> cmds;
    const auto& group = *opts_.sentinels;
    if (!group.password().empty()) cmds.push_back(auth_command(group.user(), group.password()));
    cmds.push_back({"SENTINEL", "get-master-addr-by-name", group.master()});
    return exchange(std::move(cmds));
  }
  if (phase_ == Phase::node) return exchange(handshake_commands(opts_));
  return fail(Failure{errc::protocol_error, "connected outside an attempt"}, now);
}

std::optional<Failure> ConnectionFsm::check_handshake_reply(const std::string& command,
                                                            const RespValue& reply) const {
  // A name is a courtesy: a user without the right to set it still gets a connection.
  if (command == "CLIENT") return std::nullopt;
  if (reply.is_error()) {
    return Failure{classify_server_error(reply.str),
                   command + " refused: " + reply.str.substr(0, 200)};
  }
  if (command == "ROLE" && (reply.elements.empty() || reply.elements[0].str != "master")) {
    return Failure{errc::unavailable,
                   "the sentinels' master is not a master (failover in progress)"};
  }
  return std::nullopt;
}

ConnectionFsm::Step ConnectionFsm::on_sentinel_reply(const RespValue& r, clock::time_point now) {
  const std::string& command = awaited_[answered_++];
  if (command == "AUTH") {
    if (r.is_error()) return sentinel_trouble("AUTH refused", now);
    return Step{Step::Kind::read, deadline_};
  }
  if (r.is_error()) return sentinel_trouble(r.str.substr(0, 200), now);
  if (r.type != RespValue::Type::array || r.elements.size() != 2) {
    return sentinel_trouble("does not know master '" + opts_.sentinels->master() + "'", now);
  }
  const std::string& port_text = r.elements[1].str;
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535 || r.elements[0].str.empty()) {
    return sentinel_trouble("bad master address in its reply", now);
  }
  opts_.sentinels->answered(asked_);
  return connect_node(Address{r.elements[0].str, static_cast<std::uint16_t>(port)}, now);
}

ConnectionFsm::Step ConnectionFsm::on_bytes(const char* data, std::size_t size,
                                            clock::time_point now) {
  if (!parser_ || (phase_ != Phase::lookup && phase_ != Phase::node)) {
    return fail(Failure{errc::protocol_error, "unexpected bytes during the handshake"}, now);
  }
  try {
    parser_->feed(data, size);
    while (answered_ < awaited_.size()) {
      auto reply = parser_->next();
      if (!reply) return Step{Step::Kind::read, deadline_};
      if (phase_ == Phase::lookup) {
        Step s = on_sentinel_reply(*reply, now);
        if (s.kind != Step::Kind::read) return s;
        continue;
      }
      const std::string& command = awaited_[answered_++];
      if (auto bad = check_handshake_reply(command, *reply)) return fail(*bad, now);
    }
    // Nothing was written after the handshake, so nothing more may have come.
    if (parser_->next()) {
      return fail(Failure{errc::protocol_error, "unexpected reply after the handshake"}, now);
    }
  } catch (const std::runtime_error&) {
    if (phase_ == Phase::lookup) return sentinel_trouble("malformed reply", now);
    return fail(Failure{errc::protocol_error, "malformed reply to the handshake"}, now);
  }
  phase_ = Phase::ready;
  parser_.reset();
  failures_ = 0;
  last_reply_ = now;
  return Step{Step::Kind::ready};
}

ConnectionFsm::Step ConnectionFsm::on_io_error(const Failure& why, clock::time_point now) {
  if (phase_ == Phase::lookup) return sentinel_trouble(why.detail, now);
  if (phase_ == Phase::node) return fail(why, now);
  on_dropped(now);
  Step s;
  s.kind = Step::Kind::failed;
  s.failure = why;
  return s;
}

ConnectionFsm::Step ConnectionFsm::on_timeout(clock::time_point now) {
  if (phase_ == Phase::lookup) {
    return sentinel_trouble("no answer within " + std::to_string(share_.count()) + " ms", now);
  }
  if (phase_ == Phase::node) {
    return fail(
        Failure{errc::unavailable, "no connection within the connect timeout (" +
                                       std::to_string(opts_.connect_timeout.count()) + " ms)"},
        now);
  }
  return Step{ready() ? Step::Kind::ready : Step::Kind::failed};
}

void ConnectionFsm::abort() noexcept {
  if (phase_ != Phase::ready) phase_ = Phase::idle;
  parser_.reset();
}

void ConnectionFsm::on_dropped(clock::time_point now) noexcept {
  if (phase_ == Phase::ready) retry_at_ = now;  // A healthy connection retries at once.
  phase_ = Phase::idle;
  parser_.reset();
}

std::optional<Failure> ConnectionFsm::stale(std::optional<clock::time_point> oldest_sent,
                                            clock::time_point now) const {
  if (phase_ != Phase::ready || !oldest_sent || now - *oldest_sent < opts_.request_timeout) {
    return std::nullopt;
  }
  return Failure{errc::timeout, "no reply within the request timeout (" +
                                    std::to_string(opts_.request_timeout.count()) +
                                    " ms); connection reset"};
}

bool ConnectionFsm::probe_due(bool requests_in_flight, clock::time_point now) const noexcept {
  return phase_ == Phase::ready && !requests_in_flight && now - last_reply_ >= kProbeIdleAfter;
}

}  // namespace dlock::detail::redis
