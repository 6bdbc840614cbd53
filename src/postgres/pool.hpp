// The connections of one store object: at most `size` at once, one per concurrent caller,
// kept for reuse. A caller beyond the limit waits for a free connection (bounded by its
// Context and the request timeout). A connection a failure left broken is closed, and an idle
// one the server closed (restart, idle timeout) is replaced on checkout.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "postgres/connection.hpp"

namespace dlock::detail::postgres {

class Pool {
 public:
  Pool(ConnectParams params, int size) : params_(std::move(params)), size_(size) {}
  ~Pool() { close(); }

  /// A checked-out connection; back to the pool (or closed, if broken) on destruction.
  class Handle {
   public:
    Handle(Pool* pool, std::unique_ptr<Connection> c) : pool_(pool), conn_(std::move(c)) {}
    Handle(Handle&&) = default;
    Handle& operator=(Handle&&) = delete;
    ~Handle() {
      if (conn_) pool_->put_back(std::move(conn_));
    }
    Connection* operator->() const { return conn_.get(); }
    Connection& operator*() const { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  /// A usable connection: an idle one, else a new one (connecting, bounded by the connect
  /// timeout), else the next one returned. Throws `Error` like `Connection::connect`, and
  /// `unavailable` / `timeout` / `cancelled` when none frees up in time.
  Handle get(const Context& ctx, const std::string& key, const char* step);

  /// Closes the idle connections; those in use close when returned. Later `get` calls throw
  /// `unavailable`.
  void close() noexcept;

  const ConnectParams& params() const { return params_; }

 private:
  void put_back(std::unique_ptr<Connection> c) noexcept;

  const ConnectParams params_;
  const int size_;
  std::mutex mu_;
  std::condition_variable_any freed_;
  std::vector<std::unique_ptr<Connection>> idle_;  // Most recently used last.
  int open_ = 0;                                   // Idle + in use + being connected.
  bool closed_ = false;
};

}  // namespace dlock::detail::postgres
