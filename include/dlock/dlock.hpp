// dlock/dlock.hpp: everything of dlock's public API.
//
//   auto store = dlock::open("redis://127.0.0.1:6379");
//   dlock::LockService svc(store, {.ttl = 10s});
//   svc.with_lock({}, "jobs/nightly", [](std::stop_token lost) { ... });
#pragma once

#include "dlock/context.hpp"
#include "dlock/election.hpp"
#include "dlock/error.hpp"
#include "dlock/lease.hpp"
#include "dlock/lock_info.hpp"
#include "dlock/log.hpp"
#include "dlock/manager.hpp"
#include "dlock/memory.hpp"
#include "dlock/metrics.hpp"
#include "dlock/multi_lease.hpp"
#include "dlock/mutex.hpp"
#include "dlock/options.hpp"
#include "dlock/semaphore.hpp"
#include "dlock/service.hpp"
#include "dlock/shared_mutex.hpp"
#include "dlock/store.hpp"
#include "dlock/version.hpp"
