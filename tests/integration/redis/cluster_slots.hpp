// Slot moves behind a store's back, for the cluster tests: which node owns a slot, and giving
// an empty slot to another node (CLUSTER SETSLOT on every node).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "integration/redis/cluster_group.hpp"
#include "integration/redis/raw_client.hpp"

namespace dlock::test {

/// The index of the node of `cluster` that owns `slot` per CLUSTER SLOTS (asked of `raw[0]`,
/// whose ports must be the nodes' client ports); -1 if none of them.
inline int slot_owner(std::vector<std::unique_ptr<RawClient>>& raw, ClusterGroup& cluster,
                      int slot) {
  auto slots = raw[0]->cmd({"CLUSTER", "SLOTS"});
  for (auto& range : slots.elements) {
    if (range.elements[0].integer <= slot && slot <= range.elements[1].integer) {
      const auto port = range.elements[2].elements[1].integer;
      for (int i = 0; i < 3; ++i) {
        if (cluster.node(i).port() == port) return i;
      }
    }
  }
  return -1;
}

/// Gives the (empty) `slot` to node `to`, telling the new owner, the old one and the third
/// node in that order. Returns the first error reply, or "".
inline std::string give_slot(std::vector<std::unique_ptr<RawClient>>& raw, int slot, int from,
                             int to) {
  const std::string to_id = raw[to]->cmd({"CLUSTER", "MYID"}).str;
  for (int i : {to, from, 3 - from - to}) {
    auto r = raw[i]->cmd({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
    if (r.is_error()) return r.str;
  }
  return "";
}

}  // namespace dlock::test
