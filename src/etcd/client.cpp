#include "etcd/client.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <condition_variable>
#include <fstream>
#include <sstream>

#include "etcd/keepalive_stream.hpp"
#include "etcd/watch_hub.hpp"

namespace dlock::detail::etcd {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string read_pem(const std::string& path, const std::string& scheme, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(errc::invalid_argument, scheme, "", "open",
                std::string("cannot read the ") + what + " file '" + path + "'");
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "host:port" -> host and port text ("[v6]:port" too).
std::pair<std::string, std::string> split_endpoint(const std::string& ep,
                                                   const std::string& scheme) {
  std::string host, port;
  if (!ep.empty() && ep.front() == '[') {
    auto close = ep.find(']');
    if (close == std::string::npos || close + 2 > ep.size() || ep[close + 1] != ':') {
      throw Error(errc::invalid_argument, scheme, "", "open", "bad endpoint '" + ep + "'");
    }
    host = ep.substr(1, close - 1);
    port = ep.substr(close + 2);
  } else {
    auto colon = ep.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      throw Error(errc::invalid_argument, scheme, "", "open",
                  "endpoint '" + ep + "' must be host:port");
    }
    host = ep.substr(0, colon);
    port = ep.substr(colon + 1);
  }
  if (host.empty() || port.empty()) {
    throw Error(errc::invalid_argument, scheme, "", "open", "bad endpoint '" + ep + "'");
  }
  return {host, port};
}

// One gRPC target for all endpoints, so pick_first fails over between them. Host names are
// resolved here (gRPC's ipv4:/ipv6: targets take addresses only).
std::string grpc_target(const std::vector<std::string>& endpoints, const std::string& scheme) {
  std::vector<std::string> v4, v6;
  for (auto& ep : endpoints) {
    auto [host, port] = split_endpoint(ep, scheme);
    in_addr a4;
    in6_addr a6;
    if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
      v4.push_back(host + ":" + port);
      continue;
    }
    if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
      v6.push_back("[" + host + "]:" + port);
      continue;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
      throw Error(errc::unavailable, scheme, "", "open", "cannot resolve host '" + host + "'");
    }
    char buf[INET6_ADDRSTRLEN];
    for (auto* p = res; p; p = p->ai_next) {
      if (p->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr, buf, sizeof buf);
        v4.push_back(std::string(buf) + ":" + port);
      } else if (p->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr, buf,
                  sizeof buf);
        v6.push_back("[" + std::string(buf) + "]:" + port);
      }
    }
    freeaddrinfo(res);
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (auto& e : v) s += (s.empty() ? "" : ",") + e;
    return s;
  };
  // One address family per target: IPv4 when there is any.
  if (!v4.empty()) return "ipv4:" + join(v4);
  return "ipv6:" + join(v6);
}

void sleep_for(const Context& ctx, clock::duration d) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lk(m);
  cv.wait_for(lk, ctx.stop_token(), d, [] { return false; });
}

}  // namespace

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // Every key.
}

std::int64_t lease_seconds(milliseconds ttl) {
  auto s = (ttl.count() + 999) / 1000;
  return s < 1 ? 1 : s;
}

Client::Client(const EtcdConfig& config, std::string scheme, const Context& ctx)
    : scheme_(std::move(scheme)),
      request_timeout_(config.request_timeout),
      user_(config.user),
      password_(config.password) {
  if (config.endpoints.empty()) {
    throw Error(errc::invalid_argument, scheme_, "", "open", "no endpoint");
  }
  if (config.dial_timeout.count() <= 0 || config.request_timeout.count() <= 0) {
    throw Error(errc::invalid_argument, scheme_, "", "open", "timeouts must be > 0");
  }
  const bool tls = config.tls || !config.ca_file.empty() || !config.cert_file.empty() ||
                   !config.key_file.empty();
  if (config.cert_file.empty() != config.key_file.empty()) {
    throw Error(errc::invalid_argument, scheme_, "", "open",
                "a client certificate needs both cert and key");
  }
  grpc::ChannelArguments args;
  // Reconnect quickly after a member restarts or fails over (gRPC's default backs off to 2 min).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetLoadBalancingPolicyName("pick_first");
  // Detect a dead connection (no RST, e.g. a partition) under open streams; etcd refuses pings
  // more frequent than every 5 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!config.ca_file.empty()) ssl.pem_root_certs = read_pem(config.ca_file, scheme_, "CA");
    if (!config.cert_file.empty()) {
      ssl.pem_cert_chain = read_pem(config.cert_file, scheme_, "certificate");
      ssl.pem_private_key = read_pem(config.key_file, scheme_, "key");
    }
    creds = grpc::SslCredentials(ssl);
    // Check the servers' certificates against the first endpoint's host name.
    args.SetSslTargetNameOverride(split_endpoint(config.endpoints.front(), scheme_).first);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  channel_ = grpc::CreateCustomChannel(grpc_target(config.endpoints, scheme_), creds, args);
  kv_ = pb::KV::NewStub(channel_);
  lease_ = pb::Lease::NewStub(channel_);
  watch_ = pb::Watch::NewStub(channel_);
  auth_ = pb::Auth::NewStub(channel_);

  auto dial = std::min<clock::duration>(ctx.remaining(), config.dial_timeout);
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + dial)) {
    if (ctx.stop_requested()) throw Error(errc::cancelled, scheme_, "", "connect");
    if (ctx.expired()) throw Error(errc::timeout, scheme_, "", "connect");
    throw Error(errc::unavailable, scheme_, "", "connect",
                "no etcd member answered within " +
                    std::to_string(std::chrono::duration_cast<milliseconds>(dial).count()) + " ms");
  }
  if (!user_.empty()) authenticate(ctx);
  keepalive_ = std::make_unique<KeepAliveStream>(*this);
  watches_ = std::make_unique<WatchHub>(*this);
}

Client::~Client() { close(); }

void Client::close() noexcept {
  if (closed_.exchange(true)) return;
  if (watches_) watches_->close();
  if (keepalive_) keepalive_->close();
  std::unique_lock lk(revokes_->mu);
  revokes_->cv.wait_for(lk, std::chrono::seconds(2), [&] { return revokes_->count == 0; });
}

void Client::prepare(grpc::ClientContext& cc, const Context&) {
  cc.set_wait_for_ready(
      true);  // During a failover, wait (bounded by the deadline) instead of failing.
  std::lock_guard lk(token_mu_);
  if (!token_.empty()) cc.AddMetadata("token", token_);
}

void Client::prepare_stream(grpc::ClientContext& cc) {
  // etcd checks a stream's token at each watch it creates and simple tokens expire (5 min by
  // default): every new stream starts with a fresh token.
  if (!user_.empty()) authenticate(Context::with_timeout(request_timeout_));
  cc.set_wait_for_ready(false);
  cc.set_initial_metadata_corked(true);  // Creating the stream never blocks; the first write sends.
  std::lock_guard lk(token_mu_);
  if (!token_.empty()) cc.AddMetadata("token", token_);
}

void Client::authenticate(const Context& ctx) {
  grpc::ClientContext cc;
  cc.set_wait_for_ready(true);
  auto budget = std::min<clock::duration>(ctx.remaining(), request_timeout_);
  cc.set_deadline(std::chrono::system_clock::now() + budget);
  std::stop_callback on_stop(ctx.stop_token(), [&cc] { cc.TryCancel(); });
  pb::AuthenticateRequest req;
  req.set_name(user_);
  req.set_password(password_);
  pb::AuthenticateResponse resp;
  auto st = auth_->Authenticate(&cc, req, &resp);
  if (!st.ok()) {
    // Do not echo etcd's text for a rejected password beyond its own words (no secrets in it).
    throw status_error(st, ctx, scheme_, "", "authenticate");
  }
  std::lock_guard lk(token_mu_);
  token_ = resp.token();
}

template <class Resp, class Fn>
Resp Client::call(const Context& ctx, std::string_view key, std::string_view step, Fn&& fn) {
  const auto deadline = clock::now() + std::min<clock::duration>(ctx.remaining(), request_timeout_);
  bool reauthenticated = false;
  auto backoff = milliseconds(20);
  for (;;) {
    if (closed_) throw Error(errc::closed, scheme_, std::string(key), std::string(step));
    if (ctx.stop_requested())
      throw Error(errc::cancelled, scheme_, std::string(key), std::string(step));
    if (clock::now() >= deadline) {
      throw Error(ctx.expired() ? errc::timeout : errc::unavailable, scheme_, std::string(key),
                  std::string(step), "no answer within the request timeout");
    }
    grpc::ClientContext cc;
    prepare(cc, ctx);
    cc.set_deadline(std::chrono::system_clock::now() + (deadline - clock::now()));
    std::stop_callback on_stop(ctx.stop_token(), [&cc] { cc.TryCancel(); });
    Resp resp;
    grpc::Status st = fn(cc, resp);
    if (st.ok()) return resp;
    if (is_invalid_token(st) && !user_.empty() && !reauthenticated) {
      reauthenticated = true;
      authenticate(ctx);
      continue;
    }
    if (is_transient(st) && clock::now() + backoff < deadline) {
      sleep_for(ctx, backoff);  // No leader yet, or a member went away: the channel fails over.
      backoff = std::min(backoff * 2, milliseconds(500));
      continue;
    }
    throw status_error(st, ctx, scheme_, key, step);
  }
}

pb::RangeResponse Client::range(const Context& ctx, const pb::RangeRequest& req,
                                std::string_view key, std::string_view step) {
  return call<pb::RangeResponse>(ctx, key, step, [&](grpc::ClientContext& cc, auto& resp) {
    return kv_->Range(&cc, req, &resp);
  });
}

pb::TxnResponse Client::txn(const Context& ctx, const pb::TxnRequest& req, std::string_view key,
                            std::string_view step) {
  return call<pb::TxnResponse>(ctx, key, step, [&](grpc::ClientContext& cc, auto& resp) {
    return kv_->Txn(&cc, req, &resp);
  });
}

pb::DeleteRangeResponse Client::delete_range(const Context& ctx, const pb::DeleteRangeRequest& req,
                                             std::string_view key, std::string_view step) {
  return call<pb::DeleteRangeResponse>(ctx, key, step, [&](grpc::ClientContext& cc, auto& resp) {
    return kv_->DeleteRange(&cc, req, &resp);
  });
}

pb::LeaseGrantResponse Client::grant(const Context& ctx, std::int64_t ttl_seconds,
                                     std::string_view key) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  auto resp = call<pb::LeaseGrantResponse>(
      ctx, key, "grant lease",
      [&](grpc::ClientContext& cc, auto& r) { return lease_->LeaseGrant(&cc, req, &r); });
  if (!resp.error().empty() || resp.id() == 0) {
    throw Error(errc::protocol_error, scheme_, std::string(key), "grant lease", resp.error());
  }
  return resp;
}

pb::LeaseTimeToLiveResponse Client::time_to_live(const Context& ctx, std::int64_t lease,
                                                 std::string_view key) {
  pb::LeaseTimeToLiveRequest req;
  req.set_id(lease);
  return call<pb::LeaseTimeToLiveResponse>(
      ctx, key, "lease time to live",
      [&](grpc::ClientContext& cc, auto& r) { return lease_->LeaseTimeToLive(&cc, req, &r); });
}

void Client::revoke(const Context& ctx, std::int64_t lease, std::string_view key) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  try {
    call<pb::LeaseRevokeResponse>(ctx, key, "revoke lease", [&](grpc::ClientContext& cc, auto& r) {
      return lease_->LeaseRevoke(&cc, req, &r);
    });
  } catch (const Error& e) {
    if (e.code() != errc::not_held) throw;  // Already gone: that is what we wanted.
  }
}

void Client::revoke_later(std::int64_t lease) {
  if (closed_) return;
  struct Call {
    grpc::ClientContext cc;
    pb::LeaseRevokeRequest req;
    pb::LeaseRevokeResponse resp;
  };
  auto* c = new Call;
  c->req.set_id(lease);
  prepare(c->cc, Context{});
  c->cc.set_deadline(std::chrono::system_clock::now() + request_timeout_);
  {
    std::lock_guard lk(revokes_->mu);
    ++revokes_->count;
  }
  lease_->async()->LeaseRevoke(&c->cc, &c->req, &c->resp, [inflight = revokes_, c](grpc::Status) {
    delete c;
    std::lock_guard lk(inflight->mu);
    --inflight->count;
    inflight->cv.notify_all();
  });
}

}  // namespace dlock::detail::etcd
