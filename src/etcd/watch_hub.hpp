// One Watch stream per client, multiplexing every wait of the store object and the watches
// of its held keys (LossWatch).
//
// A wait creates a watch of DELETE events on one key with no start revision, so etcd serves
// it from its "synced" group (no 100 ms catch-up tick), and waits for etcd's confirmation:
// from then on no delete of that key is missed. A persistent watch starts at a revision
// instead (so it misses nothing however late it is made, without waiting for the
// confirmation) and reports to a listener. Watch ids are chosen by the client (etcd 3.4+),
// so answers are routed without relying on their order. A reader thread routes the answers;
// a broken stream ends every wait with "may have changed" (the caller re-reads) and every
// persistent watch (its listener hears `ended`).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dlock/context.hpp"
#include "etcd/errors.hpp"
#include "rpc.grpc.pb.h"

namespace dlock::detail::etcd {

class Client;

class WatchHub {
 public:
  struct Slot;

  /// What a persistent watch reports.
  enum class Note {
    deleted,  ///< A DELETE of the key.
    ended,    ///< The watch ended (stream broke, etcd cancelled or compacted it); no more notes.
  };
  /// Called on the reader thread without the hub's locks held; must not block.
  using Listener = std::function<void(Note)>;

  explicit WatchHub(Client& client);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  /// Watches `key` for DELETE events and waits until etcd confirms the watch (one round trip
  /// on the stream). Fails with unavailable, timeout, cancelled, closed, or auth_failed when
  /// etcd refuses the watch.
  Reply<std::shared_ptr<Slot>> watch_deletes(const Context& ctx, const std::string& key);
  /// Watches every event (puts and deletes) on the keys in [`key`, `range_end`) (`range_end`
  /// empty: `key` alone) and waits for etcd's confirmation, as `watch_deletes` does: for
  /// `Store::watch`, which wakes at any change of a lock.
  Reply<std::shared_ptr<Slot>> watch_changes(const Context& ctx, const std::string& key,
                                             const std::string& range_end);
  /// Watches `key` for DELETE events from `start_revision` on, reporting them to `listener`
  /// until `cancel` or the watch ends. Does not wait for etcd's confirmation. Null when the
  /// stream could not be written (nothing is registered then); fails when closed or when a
  /// new stream cannot be prepared.
  Reply<std::shared_ptr<Slot>> watch_deletes_from(const std::string& key,
                                                  std::int64_t start_revision, Listener listener);
  /// Waits until the key was deleted or the watch ended (stream broke, etcd cancelled or
  /// compacted it): true, the caller re-reads. False when `until` passes or `ctx` ends.
  bool wait(Slot& slot, const Context& ctx, std::chrono::steady_clock::time_point until);
  /// Clears a DELETE seen earlier so the watch can be waited on again. False when the watch
  /// itself ended (stream broke, etcd cancelled it): make a new one.
  bool rearm(Slot& slot);
  /// Cancels the watch (no answer awaited). Never throws.
  void cancel(const std::shared_ptr<Slot>& slot) noexcept;

  /// Ends the stream. Idempotent.
  void close() noexcept;

 private:
  using Stream = grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;
  struct Open {
    std::unique_ptr<grpc::ClientContext> cc;
    std::unique_ptr<Stream> rw;
    std::thread reader;
    bool broken = false;
  };
  void read_loop(Open* s);
  /// Writes `req` (opening a stream if needed); registers `slot` (if any) just before.
  /// False when the stream broke; fails when closed or a new stream cannot be prepared.
  Reply<bool> write(const etcdserverpb::WatchRequest& req, const std::shared_ptr<Slot>& slot);
  /// A confirmed watch of [key, range_end): deletes only, or every event.
  Reply<std::shared_ptr<Slot>> watch_confirmed(const Context& ctx, const std::string& key,
                                               const std::string& range_end, bool every_event);

  Client& client_;
  std::mutex write_mu_;  // Serializes writes and (re)opening.
  std::unique_ptr<Open> open_;
  std::vector<std::unique_ptr<Open>> dead_;

  std::mutex mu_;  // Guards the slots and `closed_`.
  std::map<std::int64_t, std::shared_ptr<Slot>> slots_;
  std::int64_t next_id_ = 1;
  bool closed_ = false;
};

struct WatchHub::Slot {
  std::int64_t id = 0;
  bool created = false;
  bool every_event = false;  // Puts fire it too (a change watch), not only deletes.
  bool fired = false;        // A DELETE (or any event) was seen, or the watch ended.
  bool broken = false;       // The stream broke.
  bool ended = false;        // The watch no longer exists (stream broke, etcd cancelled it).
  std::string cancel_reason;
  std::condition_variable_any cv;
  WatchHub::Listener listener;  // Set for a persistent watch.
};

}  // namespace dlock::detail::etcd
