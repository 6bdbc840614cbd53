// Reentrant acquisition (`LockOptions::reentrant`): an owner (a thread, or an id the caller
// gives) that acquires a lock it already holds through the same store object gets another
// `Lease` on the same grant, with no round trip; the grant is released when the owner's last
// lease is.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/lease_state.hpp"

namespace dlock::detail {

struct ReentryTable;

/// One owner's grant and how many of its leases share it.
struct Reentry {
  Reentry(std::shared_ptr<LeaseState> s, std::weak_ptr<ReentryTable> t, std::string k,
          std::string o)
      : state(std::move(s)), table(std::move(t)), key(std::move(k)), owner(std::move(o)) {}
  ~Reentry();
  /// Gives one share back; true when it was the last (the caller then releases the grant).
  bool leave() noexcept;

  const std::shared_ptr<LeaseState> state;
  const std::weak_ptr<ReentryTable> table;
  const std::string key, owner;
  int shares = 1;  // Guarded by the table's mutex.
};

/// A store object's reentrant grants by (key, owner).
struct ReentryTable {
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, std::weak_ptr<Reentry>> grants;

  /// Another share of `owner`'s grant of `key` in a mode that covers `mode`, or nullptr.
  std::shared_ptr<Reentry> join(const std::string& key, const std::string& owner,
                                const LockMode& mode);
  /// Records a new grant as `owner`'s (replacing an ended one).
  void add(const std::shared_ptr<Reentry>& r);
};

/// The owner id of the calling thread.
std::string thread_owner();

}  // namespace dlock::detail
