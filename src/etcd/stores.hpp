// The two etcd stores over one client: `etcd+txn://` (the seed's transaction lock) and
// `etcd://` (the FIFO mutex compatible with Go's concurrency.Mutex and `etcdctl lock`).
#pragma once

#include <memory>

#include "etcd/etcd_backend.hpp"

namespace dlock::detail::etcd {

/// The store of `scheme` (for errors and metrics) over `client`, with lock keys under `prefix`.
std::shared_ptr<EtcdBackend> make_txn_backend(std::shared_ptr<Client> client, std::string scheme,
                                              std::string prefix);
std::shared_ptr<EtcdBackend> make_fifo_backend(std::shared_ptr<Client> client, std::string scheme,
                                               std::string prefix);

/// Capabilities both stores share.
Capabilities etcd_capabilities();

}  // namespace dlock::detail::etcd
