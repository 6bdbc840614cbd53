// dlock/multi_lease.hpp: several locks held together (all or nothing), from
// `Store::acquire_all`.
//
// The keys are taken in one global order (sorted), so two callers that want overlapping sets
// never deadlock; when one cannot be had in time, those already taken are released. The group
// has one loss signal: it fires when any of its grants is lost. Move-only; destroying it
// releases every grant (never throwing). Thread-safe like `Lease`.
#pragma once

#include <memory>
#include <stop_token>
#include <vector>

#include "dlock/export.hpp"
#include "dlock/lease.hpp"

namespace dlock {

/// Several grants held together.
class DLOCK_API MultiLease {
 public:
  /// An empty group.
  MultiLease() noexcept;
  /// Takes `leases` as one group (its loss signal watches each).
  explicit MultiLease(std::vector<Lease> leases);
  MultiLease(MultiLease&&) noexcept;
  /// Releases the held grants first, then takes `other`'s.
  MultiLease& operator=(MultiLease&&) noexcept;
  MultiLease(const MultiLease&) = delete;
  MultiLease& operator=(const MultiLease&) = delete;
  /// Releases every grant, swallowing errors. Never throws.
  ~MultiLease();

  /// The grants, in key order.
  const std::vector<Lease>& leases() const noexcept { return leases_; }
  /// How many grants the group has.
  std::size_t size() const noexcept { return leases_.size(); }
  /// Whether every grant is held (not released, not lost, within its validity).
  bool held() const noexcept;
  /// Stopped when any grant of the group is lost while held.
  std::stop_token lost_token() const noexcept;
  /// Releases every grant (one round trip each). Returns `released` if all were, else the
  /// first other status. Idempotent, never throws.
  ReleaseResult release(const Context& ctx = {}) noexcept;

 private:
  std::vector<Lease> leases_;
  std::shared_ptr<std::stop_source> lost_;
};

}  // namespace dlock
