// Random tokens and numbers from the kernel's CSPRNG.
#pragma once

#include <cstdint>
#include <string>

namespace dlock::detail {

/// 128 random bits from getrandom(2), as 32 lower-case hex characters.
std::string random_token();

/// A uniformly random double in [0, 1) for jitter (not secret).
double random_unit();

}  // namespace dlock::detail
