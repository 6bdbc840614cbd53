// Fuzzes the embedded store's state-record parser (src/file/lock_state.*): the file every
// process on the host reads before it takes a lock, which a crash mid-write, a full disk or
// another program may have left in any shape. It must return nullopt for what is not a
// record, never throw, and a record must survive serialize -> parse unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "file/lock_state.hpp"

namespace {

bool same(const dlock::detail::LockState& a, const dlock::detail::LockState& b) {
  return a.fencing == b.fencing && a.token == b.token && a.slot == b.slot &&
         a.boot_id == b.boot_id && a.deadline_ns == b.deadline_ns && a.metadata == b.metadata;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto state = dlock::detail::parse_state(text);
  if (!state) return 0;
  (void)state->unexpired(dlock::detail::monotonic_ns());
  const auto again = dlock::detail::parse_state(dlock::detail::serialize_state(*state));
  if (!again || !same(*state, *again)) __builtin_trap();
  return 0;
}
