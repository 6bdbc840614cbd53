// Leader election on a lock: the leader is the holder of the election's lock, its value the
// metadata text of that grant, its term the grant's fencing token; observing is watching the
// lock and reporting changes of leader or value.
#include "dlock/election.hpp"

#include "core/access.hpp"
#include "core/lease_state.hpp"
#include "core/metadata.hpp"

namespace dlock {
namespace {

std::optional<LeaderInfo> leader_of(const LockInfo& info) {
  if (info.holders.empty()) return std::nullopt;
  const HolderInfo& h = info.holders.front();
  return LeaderInfo{h.owner.text, h.fencing_token, h.owner, h.ttl_remaining};
}

}  // namespace

void Leadership::proclaim(const Context& ctx, std::string value) {
  const auto& state = detail::Access::state(lease_);
  if (!state) throw Error(errc::not_held, "", "", "proclaim", "not leading");
  if (value.size() > kMaxMetadataBytes) {
    throw Error(errc::invalid_argument, state->scheme(), state->key(), "proclaim",
                "the value is longer than " + std::to_string(kMaxMetadataBytes) + " bytes");
  }
  state->set_metadata(ctx, detail::make_metadata(value));
  value_ = std::move(value);
}

Election::Election(Store store, std::string name, LockOptions opts)
    : store_(std::move(store)), name_(std::move(name)), opts_(std::move(opts)) {
  opts_.auto_renew = true;
  opts_.reentrant = false;
  opts_.mode = LockMode::exclusive();
}

Leadership Election::campaign(const Context& ctx, std::string value) {
  LockOptions o = opts_;
  o.metadata = value;
  return Leadership(store_.acquire(ctx, name_, o), std::move(value));
}

std::optional<LeaderInfo> Election::leader(const Context& ctx) {
  return leader_of(store_.inspect(ctx, name_));
}

void Election::observe(const Context& ctx,
                       const std::function<bool(const std::optional<LeaderInfo>&)>& cb) {
  bool first = true;
  std::optional<LeaderInfo> last;
  store_.watch(ctx, name_, [&](const LockEvent& e) {
    auto now = leader_of(e.state);
    const bool same = last.has_value() == now.has_value() &&
                      (!now || (last->term == now->term && last->value == now->value));
    if (!first && same) return true;  // Waiters or TTL changed, not the leader.
    first = false;
    last = now;
    return cb(now);
  });
}

}  // namespace dlock
