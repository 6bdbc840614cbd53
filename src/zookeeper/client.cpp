#include "zookeeper/client.hpp"

#include <zookeeper/zookeeper.h>

#include <memory>
#include <stop_token>
#include <unordered_map>

#include "dlock/error.hpp"

namespace dlock::detail::zookeeper {
namespace {

using clock = std::chrono::steady_clock;
const char* const kScheme = "zk";

// The C client's log lines go nowhere (dlock reports failures as typed errors instead).
void drop_log(const char*) {}

// One-shot watches, by id (the C client holds only the id, so a watch that never fires, e.g.
// after its session ended, leaves nothing dangling).
struct WatchEntry {
  const Client* owner;
  std::function<void()> fn;
};
std::mutex watch_mu;
std::unordered_map<std::uintptr_t, WatchEntry> watches;
std::uintptr_t next_watch_id = 1;

std::uintptr_t add_watch(const Client* owner, std::function<void()> fn) {
  std::lock_guard lk(watch_mu);
  const auto id = next_watch_id++;
  watches.emplace(id, WatchEntry{owner, std::move(fn)});
  return id;
}
void drop_watch(std::uintptr_t id) {
  std::lock_guard lk(watch_mu);
  watches.erase(id);
}
void drop_watches_of(const Client* owner) {
  std::lock_guard lk(watch_mu);
  std::erase_if(watches, [&](auto& e) { return e.second.owner == owner; });
}

void node_watcher(zhandle_t*, int type, int, const char*, void* ctx) {
  if (type == ZOO_SESSION_EVENT) return;  // Session changes go to the session watcher.
  std::function<void()> fn;
  {
    std::lock_guard lk(watch_mu);
    auto it = watches.find(reinterpret_cast<std::uintptr_t>(ctx));
    if (it == watches.end()) return;
    fn = std::move(it->second.fn);
    watches.erase(it);
  }
  if (fn) fn();
}

void session_watcher(zhandle_t* zh, int type, int state, const char*, void* ctx) {
  if (type != ZOO_SESSION_EVENT || ctx == nullptr) return;
  static_cast<Client*>(ctx)->on_session_event(zh, state);
}

NodeStat to_stat(const Stat* s) {
  NodeStat out;
  if (s) {
    out.czxid = s->czxid;
    out.version = s->version;
    out.ephemeral_owner = s->ephemeralOwner;
    out.mtime_ms = s->mtime;
  }
  return out;
}

}  // namespace

// One request in flight. The completion owns a reference, so a caller that stopped waiting
// leaves it safely behind.
struct Client::Call {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int rc = ZOK;
  std::string value;
  NodeStat stat;
  std::vector<std::string> names;

  static void* box(const std::shared_ptr<Call>& c) { return new std::shared_ptr<Call>(c); }
  static std::shared_ptr<Call> unbox(const void* data) {
    auto* p = static_cast<std::shared_ptr<Call>*>(const_cast<void*>(data));
    std::shared_ptr<Call> c = std::move(*p);
    delete p;
    return c;
  }
  void complete(int r) {
    std::lock_guard lk(mu);
    rc = r;
    done = true;
    cv.notify_all();
  }
  static void on_void(int rc, const void* data) { unbox(data)->complete(rc); }
  static void on_stat(int rc, const Stat* s, const void* data) {
    auto c = unbox(data);
    c->stat = to_stat(s);
    c->complete(rc);
  }
  static void on_data(int rc, const char* v, int len, const Stat* s, const void* data) {
    auto c = unbox(data);
    if (v && len > 0) c->value.assign(v, static_cast<std::size_t>(len));
    c->stat = to_stat(s);
    c->complete(rc);
  }
  static void on_strings(int rc, const String_vector* sv, const void* data) {
    auto c = unbox(data);
    if (sv) {
      for (int i = 0; i < sv->count; ++i) c->names.emplace_back(sv->data[i]);
    }
    c->complete(rc);
  }
  static void on_string_stat(int rc, const char* v, const Stat* s, const void* data) {
    auto c = unbox(data);
    if (v) c->value = v;
    c->stat = to_stat(s);
    c->complete(rc);
  }
};

Client::Client(const ZooKeeperConfig& config) : cfg_(config) {}

Client::~Client() { close(); }

std::uint64_t Client::generation() const {
  std::lock_guard lk(mu_);
  return generation_;
}

std::pair<std::int64_t, std::string> Client::session_credentials() const {
  std::lock_guard lk(mu_);
  if (!zh_) return {0, ""};
  const clientid_t* id = zoo_client_id(zh_);
  return {id->client_id, std::string(id->passwd, sizeof(id->passwd))};
}

void Client::on_session_event(_zhandle* zh, int state) {
  std::function<void(std::uint64_t)> fire;
  std::uint64_t gen = 0;
  {
    std::lock_guard lk(mu_);
    if (zh != zh_) return;  // An old handle's last words.
    gen = generation_;
    const bool was = state_ == ZOO_CONNECTED_STATE;
    state_ = state;
    if (state == ZOO_CONNECTED_STATE) {
      if (was_connected_ && !was) fire = events_.reconnected;
      was_connected_ = true;
    } else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
      if (was) fire = events_.disconnected;
    } else if (state == ZOO_EXPIRED_SESSION_STATE) {
      fire = events_.expired;
    }
    cv_.notify_all();
  }
  if (state == ZOO_EXPIRED_SESSION_STATE) drop_watches_of(this);
  if (fire) fire(gen);
}

void Client::connect(const Context& ctx, const std::string& key, const char* step) {
  // Called with connect_mu_ held. An expired or failed handle is closed first (outside mu_:
  // closing joins the threads that call on_session_event).
  zhandle_t* old = nullptr;
  {
    std::lock_guard lk(mu_);
    if (closed_) throw Error(errc::closed, kScheme, key, step, "the store object is closed");
    if (zh_ && state_ != ZOO_EXPIRED_SESSION_STATE && state_ != ZOO_AUTH_FAILED_STATE) return;
    old = zh_;
    zh_ = nullptr;
  }
  if (old) {
    std::unique_lock swap(swap_mu_);
    zookeeper_close(old);
  }
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  zhandle_t* zh = nullptr;
  {
    // The handle is published before its first event can be judged (events of other handles
    // are ignored), so the session watcher runs only once zh_ is set.
    std::lock_guard lk(mu_);
    zh =
        zookeeper_init2(cfg_.hosts.c_str(), session_watcher,
                        static_cast<int>(cfg_.session_timeout.count()), nullptr, this, 0, drop_log);
    if (!zh) {
      // It resolves the host names at once: a name that does not resolve ends here.
      throw Error(errc::unavailable, kScheme, key, step,
                  "the ZooKeeper client could not resolve or use the hosts '" + cfg_.hosts + "'");
    }
    zh_ = zh;
    state_ = 0;
    was_connected_ = false;
  }
  const auto until = std::min(ctx.deadline(), clock::now() + cfg_.connect_timeout);
  int state = 0;
  {
    // Registered before the lock is taken: a stop already requested runs it at once.
    std::stop_callback wake(ctx.stop_token(), [&] {
      std::lock_guard l2(mu_);
      cv_.notify_all();
    });
    std::unique_lock lk(mu_);
    cv_.wait_until(lk, until, [&] {
      return state_ == ZOO_CONNECTED_STATE || state_ == ZOO_EXPIRED_SESSION_STATE ||
             state_ == ZOO_AUTH_FAILED_STATE || ctx.stop_requested();
    });
    state = state_;
    if (state == ZOO_CONNECTED_STATE) ++generation_;
  }
  if (state != ZOO_CONNECTED_STATE) {
    {
      std::lock_guard lk(mu_);
      zh_ = nullptr;
    }
    std::unique_lock swap(swap_mu_);
    zookeeper_close(zh);
    if (ctx.stop_requested()) throw Error(errc::cancelled, kScheme, key, step, "cancelled");
    if (state == ZOO_AUTH_FAILED_STATE) {
      throw Error(errc::auth_failed, kScheme, key, step, "the server refused the session");
    }
    if (ctx.expired()) {
      throw Error(errc::timeout, kScheme, key, step,
                  "no ZooKeeper session established before the deadline (" + cfg_.hosts + ")");
    }
    throw Error(errc::unavailable, kScheme, key, step,
                "no ZooKeeper server of " + cfg_.hosts + " established a session within " +
                    std::to_string(cfg_.connect_timeout.count()) + " ms");
  }
  if (!cfg_.user.empty()) {
    const std::string cred = cfg_.user + ":" + cfg_.password;
    auto call = std::make_shared<Call>();
    void* boxed = Call::box(call);
    const int rc = zoo_add_auth(zh, "digest", cred.data(), static_cast<int>(cred.size()),
                                &Call::on_void, boxed);
    if (rc != ZOK) {
      Call::unbox(boxed);
      throw Error(errc::auth_failed, kScheme, key, step,
                  std::string("adding the digest credentials failed: ") + zerror(rc));
    }
    wait_call(*call, ctx, key, step);
    if (call->rc != ZOK) {
      throw Error(call->rc == ZAUTHFAILED ? errc::auth_failed : errc::unavailable, kScheme, key,
                  step, std::string("adding the digest credentials failed: ") + zerror(call->rc));
    }
  }
}

std::uint64_t Client::ensure(const Context& ctx, const std::string& key, const char* step) {
  {
    std::lock_guard lk(mu_);
    if (closed_) throw Error(errc::closed, kScheme, key, step, "the store object is closed");
    if (zh_ && state_ != ZOO_EXPIRED_SESSION_STATE && state_ != ZOO_AUTH_FAILED_STATE &&
        was_connected_) {
      return generation_;
    }
  }
  std::lock_guard connecting(connect_mu_);
  connect(ctx, key, step);
  std::lock_guard lk(mu_);
  return generation_;
}

zhandle_t* Client::handle(const Context& ctx, const std::string& key, const char* step,
                          std::shared_lock<std::shared_mutex>& use) {
  ensure(ctx, key, step);
  use = std::shared_lock(swap_mu_);
  std::lock_guard lk(mu_);
  if (!zh_) throw Error(errc::unavailable, kScheme, key, step, "no ZooKeeper session");
  return zh_;
}

void Client::wait_call(Call& call, const Context& ctx, const std::string& key, const char* step) {
  const auto until = std::min(ctx.deadline(), clock::now() + cfg_.request_timeout);
  // Registered before the lock is taken: a stop already requested runs it at once.
  std::stop_callback wake(ctx.stop_token(), [&] {
    std::lock_guard l2(call.mu);
    call.cv.notify_all();
  });
  std::unique_lock lk(call.mu);
  call.cv.wait_until(lk, until, [&] { return call.done || ctx.stop_requested(); });
  if (call.done) return;
  if (ctx.stop_requested()) throw Error(errc::cancelled, kScheme, key, step, "cancelled");
  if (ctx.expired()) {
    throw Error(errc::timeout, kScheme, key, step, "no ZooKeeper reply before the deadline");
  }
  throw Error(errc::unavailable, kScheme, key, step,
              "no ZooKeeper reply within the request timeout of " +
                  std::to_string(cfg_.request_timeout.count()) + " ms");
}

Rc Client::finish(int rc, const std::string& key, const char* step, const std::string& path) {
  switch (rc) {
    case ZOK:
      return Rc::ok;
    case ZNONODE:
      return Rc::no_node;
    case ZNODEEXISTS:
      return Rc::node_exists;
    case ZBADVERSION:
      return Rc::bad_version;
    case ZNOTEMPTY:
      return Rc::not_empty;
    default:
      break;
  }
  errc code = errc::protocol_error;
  if (rc == ZNOAUTH || rc == ZAUTHFAILED) {
    code = errc::auth_failed;
  } else if (rc == ZCONNECTIONLOSS || rc == ZSESSIONEXPIRED || rc == ZOPERATIONTIMEOUT ||
             rc == ZCLOSING || rc == ZINVALIDSTATE || rc == ZSESSIONMOVED || rc == ZSYSTEMERROR ||
             rc == ZRUNTIMEINCONSISTENCY || rc == ZMARSHALLINGERROR) {
    code = errc::unavailable;
  } else if (rc == ZBADARGUMENTS || rc == ZINVALIDACL) {
    code = errc::invalid_argument;
  }
  throw Error(code, kScheme, key, step, path + ": " + zerror(rc));
}

template <class Start>
std::shared_ptr<Client::Call> Client::request(const Context& ctx, const std::string& key,
                                              const char* step, int& rc, Start&& start) {
  std::shared_lock<std::shared_mutex> use;
  zhandle_t* zh = handle(ctx, key, step, use);
  auto call = std::make_shared<Call>();
  void* boxed = Call::box(call);
  rc = start(zh, boxed);
  if (rc != ZOK) {
    Call::unbox(boxed);
    return nullptr;
  }
  use.unlock();
  wait_call(*call, ctx, key, step);
  return call;
}

Rc Client::create(const Context& ctx, const std::string& path, const std::string& data,
                  NodeKind kind, std::string* created, NodeStat* stat, const std::string& key,
                  const char* step) {
  const int flags = kind == NodeKind::ephemeral_sequential ? ZOO_EPHEMERAL_SEQUENTIAL
                    : kind == NodeKind::container          ? ZOO_CONTAINER
                                                           : ZOO_PERSISTENT;
  ACL_vector* acl = cfg_.user.empty() ? &ZOO_OPEN_ACL_UNSAFE : &ZOO_CREATOR_ALL_ACL;
  int rc = ZOK;
  auto call = request(ctx, key, step, rc, [&](zhandle_t* zh, void* boxed) {
    return zoo_acreate2(zh, path.c_str(), data.data(), static_cast<int>(data.size()), acl, flags,
                        &Call::on_string_stat, boxed);
  });
  if (!call) return finish(rc, key, step, path);
  if (call->rc == ZOK) {
    if (created) *created = call->value;
    if (stat) *stat = call->stat;
  }
  return finish(call->rc, key, step, path);
}

void Client::create_parents(const Context& ctx, const std::string& path, NodeKind kind,
                            const std::string& key, const char* step) {
  for (std::size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    const std::string part = at == std::string::npos ? path : path.substr(0, at);
    const Rc rc = create(ctx, part, "", at == std::string::npos ? kind : NodeKind::persistent,
                         nullptr, nullptr, key, step);
    if (rc != Rc::ok && rc != Rc::node_exists) {
      throw Error(errc::protocol_error, kScheme, key, step, "could not create " + part);
    }
    if (at == std::string::npos) return;
  }
}

Rc Client::remove(const Context& ctx, const std::string& path, int version, const std::string& key,
                  const char* step) {
  int rc = ZOK;
  auto call = request(ctx, key, step, rc, [&](zhandle_t* zh, void* boxed) {
    return zoo_adelete(zh, path.c_str(), version, &Call::on_void, boxed);
  });
  return finish(call ? call->rc : rc, key, step, path);
}

Rc Client::exists(const Context& ctx, const std::string& path, NodeStat* stat,
                  std::function<void()> on_change, const std::string& key, const char* step) {
  std::uintptr_t id = 0;
  if (on_change) id = add_watch(this, std::move(on_change));
  int rc = ZOK;
  std::shared_ptr<Call> call;
  try {
    call = request(ctx, key, step, rc, [&](zhandle_t* zh, void* boxed) {
      return zoo_awexists(zh, path.c_str(), id ? node_watcher : nullptr,
                          reinterpret_cast<void*>(id), &Call::on_stat, boxed);
    });
  } catch (...) {
    if (id) drop_watch(id);
    throw;
  }
  if (!call) {
    if (id) drop_watch(id);
    return finish(rc, key, step, path);
  }
  // A watch on a missing node would fire only when it is created: nobody waits for that.
  if (id && call->rc != ZOK) drop_watch(id);
  if (call->rc == ZOK && stat) *stat = call->stat;
  return finish(call->rc, key, step, path);
}

Rc Client::get(const Context& ctx, const std::string& path, std::string* data, NodeStat* stat,
               const std::string& key, const char* step) {
  int rc = ZOK;
  auto call = request(ctx, key, step, rc, [&](zhandle_t* zh, void* boxed) {
    return zoo_aget(zh, path.c_str(), 0, &Call::on_data, boxed);
  });
  if (!call) return finish(rc, key, step, path);
  if (call->rc == ZOK) {
    if (data) *data = call->value;
    if (stat) *stat = call->stat;
  }
  return finish(call->rc, key, step, path);
}

Rc Client::set(const Context& ctx, const std::string& path, const std::string& data, int version,
               NodeStat* stat, const std::string& key, const char* step) {
  int rc = ZOK;
  auto call = request(ctx, key, step, rc, [&](zhandle_t* zh, void* boxed) {
    return zoo_aset(zh, path.c_str(), data.data(), static_cast<int>(data.size()), version,
                    &Call::on_stat, boxed);
  });
  if (!call) return finish(rc, key, step, path);
  if (call->rc == ZOK && stat) *stat = call->stat;
  return finish(call->rc, key, step, path);
}

Rc Client::children(const Context& ctx, const std::string& path, std::vector<std::string>* names,
                    const std::string& key, const char* step) {
  int rc = ZOK;
  auto call = request(ctx, key, step, rc, [&](zhandle_t* zh, void* boxed) {
    return zoo_aget_children(zh, path.c_str(), 0, &Call::on_strings, boxed);
  });
  if (!call) return finish(rc, key, step, path);
  if (call->rc == ZOK && names) *names = std::move(call->names);
  return finish(call->rc, key, step, path);
}

void Client::close() noexcept {
  std::lock_guard connecting(connect_mu_);
  zhandle_t* zh = nullptr;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    zh = zh_;
    zh_ = nullptr;
  }
  if (zh) {
    std::unique_lock swap(swap_mu_);
    zookeeper_close(zh);
  }
  drop_watches_of(this);
}

}  // namespace dlock::detail::zookeeper
