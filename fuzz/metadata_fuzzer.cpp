// Fuzzes the owner-metadata parser (src/core/metadata.*): the text that `inspect` and `list`
// read back from a store, where any client may have written anything. It must never throw,
// and dlock's own metadata must survive the round trip.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/metadata.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  (void)dlock::detail::parse_metadata(raw);  // Must not throw on anything.

  // As free text of a grant: written by make_metadata, read back intact when it is valid
  // UTF-8 (invalid UTF-8 is replaced on purpose).
  bool valid_utf8 = true;
  try {
    (void)nlohmann::json(raw).dump();
  } catch (const nlohmann::json::exception&) {
    valid_utf8 = false;
  }
  const auto back = dlock::detail::parse_metadata(dlock::detail::make_metadata(raw));
  if (valid_utf8 && back.text != raw) __builtin_trap();
  if (back.foreign()) __builtin_trap();  // dlock's own metadata names host, pid and time.
  return 0;
}
