// The one door from core into the public handles' internals (`Store`'s core, `Lease`'s
// state), so that the public classes need no public internal constructors or accessors.
#pragma once

#include <memory>
#include <utility>

#include "dlock/async.hpp"
#include "dlock/lease.hpp"
#include "dlock/store.hpp"

namespace dlock::detail {

class StoreCore;
class LeaseState;
struct Reentry;
class AsyncAcquire;

struct Access {
  static AsyncHandle handle(std::shared_ptr<AsyncAcquire> op) {
    AsyncHandle h;
    h.op_ = std::move(op);
    return h;
  }
  static const std::shared_ptr<AsyncAcquire>& op(const AsyncHandle& h) noexcept { return h.op_; }
  static Store store(std::shared_ptr<StoreCore> core) { return Store(std::move(core)); }
  static const std::shared_ptr<StoreCore>& core(const Store& s) noexcept { return s.core_; }
  static Lease lease(std::shared_ptr<LeaseState> state,
                     std::shared_ptr<Reentry> reentry = nullptr) noexcept {
    return Lease(std::move(state), std::move(reentry));
  }
  static const std::shared_ptr<LeaseState>& state(const Lease& l) noexcept { return l.state_; }
  /// Takes the state out of `l` (which then holds nothing and releases nothing).
  static std::shared_ptr<LeaseState> take(Lease& l) noexcept { return std::move(l.state_); }
};

}  // namespace dlock::detail
