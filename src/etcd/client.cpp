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

Failure read_pem(const std::string& path, const char* what, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(errc::invalid_argument,
                std::string("cannot read the ") + what + " file '" + path + "'");
  }
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return {};
}

// "host:port" -> host and port text ("[v6]:port" too).
Failure split_endpoint(const std::string& ep, std::string& host, std::string& port) {
  if (!ep.empty() && ep.front() == '[') {
    auto close = ep.find(']');
    if (close == std::string::npos || close + 2 > ep.size() || ep[close + 1] != ':') {
      return fail(errc::invalid_argument, "bad endpoint '" + ep + "'");
    }
    host = ep.substr(1, close - 1);
    port = ep.substr(close + 2);
  } else {
    auto colon = ep.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return fail(errc::invalid_argument, "endpoint '" + ep + "' must be host:port");
    }
    host = ep.substr(0, colon);
    port = ep.substr(colon + 1);
  }
  if (host.empty() || port.empty())
    return fail(errc::invalid_argument, "bad endpoint '" + ep + "'");
  return {};
}

// One gRPC target for all endpoints, so pick_first fails over between them. Host names are
// resolved here (gRPC's ipv4:/ipv6: targets take addresses only).
Failure grpc_target(const std::vector<std::string>& endpoints, std::string& target) {
  std::vector<std::string> v4, v6;
  for (auto& ep : endpoints) {
    std::string host, port;
    if (auto f = split_endpoint(ep, host, port)) return f;
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
      return fail(errc::unavailable, "cannot resolve host '" + host + "'");
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
  target = !v4.empty() ? "ipv4:" + join(v4) : "ipv6:" + join(v6);
  return {};
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

Client::Client(const EtcdConfig& config)
    : request_timeout_(config.request_timeout), user_(config.user), password_(config.password) {}

Reply<std::shared_ptr<Client>> Client::open(const EtcdConfig& config, const Context& ctx) {
  std::shared_ptr<Client> c(new Client(config));
  if (auto f = c->connect(config, ctx)) return {nullptr, std::move(f)};
  return {std::move(c), {}};
}

Failure Client::connect(const EtcdConfig& config, const Context& ctx) {
  if (config.endpoints.empty()) return fail(errc::invalid_argument, "no endpoint");
  if (config.connect_timeout.count() <= 0 || config.request_timeout.count() <= 0) {
    return fail(errc::invalid_argument, "timeouts must be > 0");
  }
  const bool tls = config.tls || !config.ca_file.empty() || !config.cert_file.empty() ||
                   !config.key_file.empty();
  if (config.cert_file.empty() != config.key_file.empty()) {
    return fail(errc::invalid_argument, "a client certificate needs both cert and key");
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
    if (!config.ca_file.empty()) {
      if (auto f = read_pem(config.ca_file, "CA", ssl.pem_root_certs)) return f;
    }
    if (!config.cert_file.empty()) {
      if (auto f = read_pem(config.cert_file, "certificate", ssl.pem_cert_chain)) return f;
      if (auto f = read_pem(config.key_file, "key", ssl.pem_private_key)) return f;
    }
    creds = grpc::SslCredentials(ssl);
    // Check the servers' certificates against the first endpoint's host name.
    std::string host, port;
    if (auto f = split_endpoint(config.endpoints.front(), host, port)) return f;
    args.SetSslTargetNameOverride(host);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  std::string target;
  if (auto f = grpc_target(config.endpoints, target)) return f;
  channel_ = grpc::CreateCustomChannel(target, creds, args);
  kv_ = pb::KV::NewStub(channel_);
  lease_ = pb::Lease::NewStub(channel_);
  watch_ = pb::Watch::NewStub(channel_);
  auth_ = pb::Auth::NewStub(channel_);

  auto dial = std::min<clock::duration>(ctx.remaining(), config.connect_timeout);
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + dial)) {
    if (ctx.stop_requested()) return fail(errc::cancelled);
    if (ctx.expired()) return fail(errc::timeout);
    return fail(errc::unavailable,
                "no etcd member answered within " +
                    std::to_string(std::chrono::duration_cast<milliseconds>(dial).count()) + " ms");
  }
  if (!user_.empty()) {
    if (auto f = authenticate(ctx)) return f;
  }
  keepalive_ = std::make_unique<KeepAliveStream>(*this);
  watches_ = std::make_unique<WatchHub>(*this);
  return {};
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

Failure Client::prepare_stream(grpc::ClientContext& cc) {
  // etcd checks a stream's token at each watch it creates and simple tokens expire (5 min by
  // default): a new stream starts with a fresh token. One obtained within the last second
  // (when the store opened, or by the other stream) counts as fresh: etcd's password check is
  // costly (bcrypt), and a refused token makes the next stream authenticate anyway.
  if (!user_.empty()) {
    bool fresh;
    {
      std::lock_guard lk(token_mu_);
      fresh =
          !token_.empty() && !token_refused_ && clock::now() - token_at_ < std::chrono::seconds(1);
    }
    if (!fresh) {
      if (auto f = authenticate(Context::with_timeout(request_timeout_))) return f;
    }
  }
  cc.set_wait_for_ready(false);
  cc.set_initial_metadata_corked(true);  // Creating the stream never blocks; the first write sends.
  std::lock_guard lk(token_mu_);
  if (!token_.empty()) cc.AddMetadata("token", token_);
  return {};
}

void Client::token_refused() {
  std::lock_guard lk(token_mu_);
  token_refused_ = true;
}

Failure Client::authenticate(const Context& ctx) {
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
    // etcd's text for a rejected password holds no secret; say which step failed.
    auto f = status_failure(st, ctx);
    f.detail = "authenticate: " + f.detail;
    return f;
  }
  std::lock_guard lk(token_mu_);
  token_ = resp.token();
  token_at_ = clock::now();
  token_refused_ = false;
  return {};
}

template <class Resp, class Fn>
Reply<Resp> Client::call(const Context& ctx, Fn&& fn) {
  const auto deadline = clock::now() + std::min<clock::duration>(ctx.remaining(), request_timeout_);
  bool reauthenticated = false;
  auto backoff = milliseconds(20);
  for (;;) {
    if (closed_) return {{}, fail(errc::closed)};
    if (ctx.stop_requested()) return {{}, fail(errc::cancelled)};
    if (clock::now() >= deadline) {
      return {{},
              fail(ctx.expired() ? errc::timeout : errc::unavailable,
                   "no answer within the request timeout")};
    }
    grpc::ClientContext cc;
    prepare(cc, ctx);
    cc.set_deadline(std::chrono::system_clock::now() + (deadline - clock::now()));
    std::stop_callback on_stop(ctx.stop_token(), [&cc] { cc.TryCancel(); });
    Reply<Resp> r;
    grpc::Status st = fn(cc, r.value);
    if (st.ok()) return r;
    if (is_invalid_token(st) && !user_.empty() && !reauthenticated) {
      reauthenticated = true;
      if (auto f = authenticate(ctx)) return {{}, std::move(f)};
      continue;
    }
    if (is_transient(st) && clock::now() + backoff < deadline) {
      sleep_for(ctx, backoff);  // No leader yet, or a member went away: the channel fails over.
      backoff = std::min(backoff * 2, milliseconds(500));
      continue;
    }
    return {{}, status_failure(st, ctx)};
  }
}

Reply<pb::RangeResponse> Client::range(const Context& ctx, const pb::RangeRequest& req) {
  return call<pb::RangeResponse>(
      ctx, [&](grpc::ClientContext& cc, auto& resp) { return kv_->Range(&cc, req, &resp); });
}

Reply<pb::TxnResponse> Client::txn(const Context& ctx, const pb::TxnRequest& req) {
  return call<pb::TxnResponse>(
      ctx, [&](grpc::ClientContext& cc, auto& resp) { return kv_->Txn(&cc, req, &resp); });
}

Reply<pb::DeleteRangeResponse> Client::delete_range(const Context& ctx,
                                                    const pb::DeleteRangeRequest& req) {
  return call<pb::DeleteRangeResponse>(
      ctx, [&](grpc::ClientContext& cc, auto& resp) { return kv_->DeleteRange(&cc, req, &resp); });
}

Reply<pb::LeaseGrantResponse> Client::grant(const Context& ctx, std::int64_t ttl_seconds) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  auto r = call<pb::LeaseGrantResponse>(ctx, [&](grpc::ClientContext& cc, auto& resp) {
    return lease_->LeaseGrant(&cc, req, &resp);
  });
  if (r.ok() && (!r.value.error().empty() || r.value.id() == 0)) {
    r.failure = fail(errc::protocol_error, "no lease granted: " + r.value.error());
  }
  return r;
}

Reply<pb::LeaseTimeToLiveResponse> Client::time_to_live(const Context& ctx, std::int64_t lease) {
  pb::LeaseTimeToLiveRequest req;
  req.set_id(lease);
  return call<pb::LeaseTimeToLiveResponse>(ctx, [&](grpc::ClientContext& cc, auto& resp) {
    return lease_->LeaseTimeToLive(&cc, req, &resp);
  });
}

Failure Client::revoke(const Context& ctx, std::int64_t lease) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  auto r = call<pb::LeaseRevokeResponse>(ctx, [&](grpc::ClientContext& cc, auto& resp) {
    return lease_->LeaseRevoke(&cc, req, &resp);
  });
  if (r.code() == errc::not_held) return {};  // Already gone: that is what we wanted.
  return std::move(r.failure);
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
