#include "redis/cluster.hpp"

#include "redis/errors.hpp"

namespace dlock::detail::redis {
namespace {

std::uint16_t crc16(std::string_view s) {
  std::uint16_t crc = 0;
  for (unsigned char c : s) {
    crc = static_cast<std::uint16_t>(crc ^ (c << 8));
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string address(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

}  // namespace

int key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close != open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) % 16384;
}

ClusterMap::ClusterMap(asio::io_context& io, ConnectionOptions base, std::vector<Address> seeds)
    : io_(io), base_(std::move(base)), seeds_(std::move(seeds)) {
  slot_owner_.fill(-1);
}

std::shared_ptr<Connection> ClusterMap::node_locked(const std::string& host, std::uint16_t port) {
  auto& c = nodes_[address(host, port)];
  if (!c) {
    ConnectionOptions o = base_;
    o.host = host;
    o.port = port;
    c = Connection::create(io_, std::move(o));
    if (closed_) c->close();
  }
  return c;
}

std::shared_ptr<Connection> ClusterMap::node(const std::string& host, std::uint16_t port) {
  std::lock_guard lk(mu_);
  return node_locked(host, port);
}

std::shared_ptr<Connection> ClusterMap::for_slot(int slot) {
  std::lock_guard lk(mu_);
  auto owner = slot_owner_[static_cast<std::size_t>(slot)];
  const Address& a = owner >= 0 ? owners_[static_cast<std::size_t>(owner)] : seeds_.front();
  return node_locked(a.host, a.port);
}

Address ClusterMap::owner(int slot) {
  std::lock_guard lk(mu_);
  auto owner = slot_owner_[static_cast<std::size_t>(slot)];
  return owner >= 0 ? owners_[static_cast<std::size_t>(owner)] : seeds_.front();
}

std::optional<Failure> ClusterMap::refresh(const Context& ctx) {
  std::vector<Address> candidates;
  {
    std::lock_guard lk(mu_);
    candidates = owners_;
    candidates.insert(candidates.end(), seeds_.begin(), seeds_.end());
  }
  std::string last_error = "no cluster nodes";
  for (auto& cand : candidates) {
    auto r = request(*node(cand.host, cand.port), ctx, {"CLUSTER", "SLOTS"});
    if (!r.ok()) {
      const errc code = r.failure().code;
      if (code == errc::auth_failed || code == errc::cancelled || code == errc::closed ||
          ctx.expired()) {
        return r.failure();
      }
      last_error = r.failure().detail;
      continue;
    }
    if (r->is_error()) return server_failure(r->str);
    std::vector<Address> owners;
    std::array<std::int16_t, 16384> map;
    map.fill(-1);
    for (auto& range : r->elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
      const auto& m = range.elements[2].elements;
      Address a{m[0].str.empty() ? cand.host : m[0].str, static_cast<std::uint16_t>(m[1].integer)};
      std::int16_t idx = -1;
      for (std::size_t i = 0; i < owners.size(); ++i) {
        if (owners[i] == a) idx = static_cast<std::int16_t>(i);
      }
      if (idx < 0) {
        owners.push_back(a);
        idx = static_cast<std::int16_t>(owners.size() - 1);
      }
      for (long long s = range.elements[0].integer; s <= range.elements[1].integer && s < 16384;
           ++s) {
        if (s >= 0) map[static_cast<std::size_t>(s)] = idx;
      }
    }
    if (owners.empty()) {
      last_error = "CLUSTER SLOTS returned no slots";
      continue;
    }
    std::lock_guard lk(mu_);
    owners_ = std::move(owners);
    slot_owner_ = map;
    return std::nullopt;
  }
  return Failure{errc::unavailable, last_error};
}

std::vector<std::shared_ptr<Connection>> ClusterMap::masters() {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<Connection>> out;
  for (auto& a : owners_) out.push_back(node_locked(a.host, a.port));
  return out;
}

void ClusterMap::close() noexcept {
  std::lock_guard lk(mu_);
  closed_ = true;
  for (auto& [a, c] : nodes_) c->close();
}

}  // namespace dlock::detail::redis
