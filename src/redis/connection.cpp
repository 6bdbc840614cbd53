#include "redis/connection.hpp"

#include <asio.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "redis/direct_connection.hpp"

namespace dlock::detail::redis {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct IoThread::Impl {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(io)};
  std::thread thread{[this] { io.run(); }};
  std::once_flag stopped;
};

IoThread::IoThread() : impl_(std::make_unique<Impl>()) {}
IoThread::~IoThread() { stop(); }
asio::io_context& IoThread::context() { return impl_->io; }

void IoThread::stop() noexcept {
  std::call_once(impl_->stopped, [this] {
    // Handlers posted before now (closing connections) run first; then the loop ends.
    asio::post(impl_->io, [this] { impl_->io.stop(); });
    if (impl_->thread.joinable()) {
      if (impl_->thread.get_id() == std::this_thread::get_id()) {
        impl_->thread.detach();
      } else {
        impl_->thread.join();
      }
    }
  });
}

std::shared_ptr<Connection> Connection::create(asio::io_context& io, ConnectionOptions options) {
  if (options.tls) return PushConnection::create(io, std::move(options));
  return make_direct_connection(std::move(options));
}

Result<std::vector<RespValue>> request_many(
    Connection& conn, const Context& ctx,
    const std::vector<std::vector<std::string_view>>& commands) {
  if (ctx.stop_requested()) return Failure{errc::cancelled, ""};
  std::vector<std::string> wires;
  wires.reserve(commands.size());
  for (auto& c : commands) wires.push_back(format_command(c));
  const auto& o = conn.options();
  const auto budget = o.request_timeout + (conn.ready() ? milliseconds(0) : o.connect_timeout);
  const auto own_deadline = clock::now() + budget;
  const auto deadline = std::min(own_deadline, ctx.deadline());
  std::vector<Outcome> outcomes;
  if (!conn.exchange(std::move(wires), outcomes, deadline, ctx.stop_token())) {
    if (ctx.stop_requested()) return Failure{errc::cancelled, ""};
    if (deadline == own_deadline) {
      conn.check_stale();
      return Failure{errc::timeout, "no reply within " + std::to_string(budget.count()) + " ms"};
    }
    return Failure{errc::timeout, "deadline passed"};
  }
  std::vector<RespValue> replies;
  replies.reserve(commands.size());
  for (auto& out : outcomes) {
    if (!out.ok()) return out.failure();
    replies.push_back(std::move(out).value());
  }
  return replies;
}

Outcome request(Connection& conn, const Context& ctx, const std::vector<std::string_view>& args) {
  auto r = request_many(conn, ctx, {args});
  if (!r.ok()) return r.failure();
  return std::move(r.value().front());
}

}  // namespace dlock::detail::redis
