// Owner metadata stored with each lock: host, pid, free text, acquire time, as JSON text.
#pragma once

#include <string>

#include "dlock/lock_info.hpp"

namespace dlock::detail {

/// The JSON object text dlock stores with a grant: {"host","pid","text","t"}.
std::string make_metadata(const std::string& text);

/// Parses metadata written by `make_metadata`; unknown or malformed text gives an OwnerInfo
/// whose `text` is the raw string (so foreign values are still shown).
OwnerInfo parse_metadata(const std::string& raw);

}  // namespace dlock::detail
