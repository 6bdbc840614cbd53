// dlock/export.hpp: DLOCK_API marks what the shared library exports (the public API only;
// everything else is built with hidden visibility).
#pragma once

#define DLOCK_API __attribute__((visibility("default")))
