#include "cmd_inspect.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"

namespace dlock::cli {
namespace {

using nlohmann::json;

std::string shown_name(const std::string& key) {
  return json(key).dump(-1, ' ', false, json::error_handler_t::replace);
}

json owner_json(const OwnerInfo& o) {
  return {{"host", o.host},
          {"pid", o.pid},
          {"text", o.text},
          {"acquired_unix_ms", o.acquired_unix_ms},
          {"foreign", o.foreign()}};
}

json info_json(const LockInfo& i) {
  json j = {{"name", i.key}, {"held", i.held}};
  if (i.waiters) j["waiters"] = *i.waiters;
  if (!i.held) return j;
  j["fencing_token"] = i.fencing_token;
  j["ttl_remaining_ms"] = i.ttl_remaining.count();
  j["owner"] = owner_json(i.owner);
  json holders = json::array();
  for (const auto& h : i.holders) {
    json jh = {{"mode", to_string(h.mode.kind)},
               {"fencing_token", h.fencing_token},
               {"ttl_remaining_ms", h.ttl_remaining.count()},
               {"owner", owner_json(h.owner)}};
    if (h.mode.kind == LockMode::Kind::permits) {
      jh["permits"] = h.mode.count;
      jh["limit"] = h.mode.limit;
    }
    holders.push_back(std::move(jh));
  }
  j["holders"] = std::move(holders);
  return j;
}

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

std::string holder_text(const LockInfo& i) { return owner_text(i.owner); }

std::string waiters_text(const LockInfo& i) {
  return i.waiters ? std::to_string(*i.waiters) : std::string("-");
}

// Times one read of the store and reports it with -v.
template <typename Fn>
auto timed(const std::string& what, const std::string& key, const Store& store, Fn fn) {
  const auto start = std::chrono::steady_clock::now();
  auto result = fn();
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.2f ms", static_cast<double>(took.count()) / 1000.0);
  log_line(LogLevel::info, what, what + " " + shown_name(key) + " on " + store.url() + " in " + ms,
           {{"key", key}, {"store", store.url()}, {"latency_us", std::int64_t{took.count()}}});
  return result;
}

// One line (text, or a JSON object per line) per change of a lock, until interrupted.
int watch_status(const InspectArgs& a, const GlobalArgs& g, Store& store) {
  store.watch(Context{}, a.name, [&](const LockEvent& e) {
    if (g.json) {
      json j = {{"event", to_string(e.kind)}, {"state", info_json(e.state)}};
      if (e.kind != LockEvent::Kind::snapshot && e.kind != LockEvent::Kind::changed) {
        j["holder"] = {{"fencing_token", e.holder.fencing_token},
                       {"mode", to_string(e.holder.mode.kind)},
                       {"owner", owner_json(e.holder.owner)}};
      }
      std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
      return true;
    }
    std::string line = std::string(to_string(e.kind)) + " " + shown_name(a.name) + ": ";
    if (e.kind == LockEvent::Kind::snapshot || e.kind == LockEvent::Kind::changed) {
      line += e.state.held ? "held by " + owner_text(e.state.owner) + ", fencing token " +
                                 std::to_string(e.state.fencing_token)
                           : "free";
    } else {
      line += "fencing token " + std::to_string(e.holder.fencing_token) + ", " +
              owner_text(e.holder.owner);
    }
    if (e.state.waiters) line += ", waiters " + std::to_string(*e.state.waiters);
    std::cout << line << std::endl;
    return true;
  });
  return kOk;
}

int status(const InspectArgs& a, const GlobalArgs& g) {
  auto store = open_store(resolve_store_url(g.store));
  if (a.watch) return watch_status(a, g, store);
  auto info = timed("inspected", a.name, store, [&] {
    return store.inspect(Context::with_timeout(std::chrono::seconds(10)), a.name);
  });
  if (g.json) {
    auto j = info_json(info);
    j["store"] = store.url();
    std::cout << dump(j) << "\n";
    return kOk;
  }
  std::cout << "lock " << shown_name(info.key) << " on " << store.url() << ": "
            << (info.held ? "held" : "free") << "\n";
  for (std::size_t n = 0; n < info.holders.size(); ++n) {
    const auto& h = info.holders[n];
    if (info.holders.size() > 1) std::cout << "  holder " << n + 1 << ":\n";
    std::cout << "  mode:           " << mode_text(h.mode) << "\n"
              << "  fencing token:  " << h.fencing_token << "\n"
              << "  ttl remaining:  " << human_duration(h.ttl_remaining) << "\n"
              << "  holder:         " << owner_text(h.owner) << "\n";
    if (!h.owner.text.empty()) std::cout << "  metadata:       " << h.owner.text << "\n";
  }
  if (info.waiters) std::cout << "  waiters:        " << *info.waiters << "\n";
  return kOk;
}

json leader_json(const std::optional<LeaderInfo>& l) {
  if (!l) return {{"leader", nullptr}};
  return {{"leader",
           {{"value", l->value},
            {"term", l->term},
            {"ttl_remaining_ms", l->ttl_remaining.count()},
            {"owner", owner_json(l->owner)}}}};
}

std::string leader_text(const std::string& name, const std::optional<LeaderInfo>& l) {
  if (!l) return "election " + shown_name(name) + ": no leader";
  return "election " + shown_name(name) + ": leader " + l->value + " (term " +
         std::to_string(l->term) + ", " + owner_text(l->owner) + ", ttl " +
         human_duration(l->ttl_remaining) + ")";
}

int leader(const InspectArgs& a, const GlobalArgs& g) {
  auto store = open_store(resolve_store_url(g.store));
  Election election(store, a.name);
  auto show = [&](const std::optional<LeaderInfo>& l) {
    if (g.json) {
      std::cout << leader_json(l).dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    } else {
      std::cout << leader_text(a.name, l) << std::endl;
    }
    return true;
  };
  if (a.watch) {
    election.observe(Context{}, show);
    return kOk;
  }
  show(election.leader(Context::with_timeout(std::chrono::seconds(10))));
  return kOk;
}

int list(const InspectArgs& a, const GlobalArgs& g) {
  auto store = open_store(resolve_store_url(g.store));
  auto rows = timed("listed", a.prefix, store, [&] {
    return store.list(Context::with_timeout(std::chrono::seconds(30)), a.prefix);
  });
  if (g.json) {
    json arr = json::array();
    for (auto& r : rows) arr.push_back(info_json(r));
    std::cout << dump(arr) << "\n";
    return kOk;
  }
  if (rows.empty()) {
    std::cout << "no locks held" << (a.prefix.empty() ? "" : " under " + shown_name(a.prefix))
              << " on " << store.url() << "\n";
    return kOk;
  }
  std::printf("%-32s %-10s %8s %10s %7s  %s\n", "NAME", "MODE", "FENCING", "TTL", "WAITERS",
              "HOLDER / METADATA");
  for (auto& r : rows) {
    // One line per holder (a shared lock has several); the name and waiters on the first.
    for (std::size_t n = 0; n < r.holders.size(); ++n) {
      const auto& h = r.holders[n];
      std::string holder = owner_text(h.owner);
      if (!h.owner.text.empty()) holder += " / " + h.owner.text;
      std::printf("%-32s %-10s %8llu %10s %7s  %s\n", n == 0 ? shown_name(r.key).c_str() : "",
                  mode_text(h.mode).c_str(), static_cast<unsigned long long>(h.fencing_token),
                  human_duration(h.ttl_remaining).c_str(), n == 0 ? waiters_text(r).c_str() : "",
                  holder.c_str());
    }
  }
  return kOk;
}

int release(const InspectArgs& a, const GlobalArgs& g) {
  if (!a.force) {
    log_line(LogLevel::error, "usage",
             "only an operator's override exists: pass --force (the holder loses the lock at "
             "its next renewal; `dlock run` then stops its command)",
             {{"exit_code", std::int64_t{kUsage}}});
    return kUsage;
  }
  auto store = open_store(resolve_store_url(g.store));
  const auto ctx = Context::with_timeout(std::chrono::seconds(10));
  auto before = timed("inspected", a.name, store, [&] { return store.inspect(ctx, a.name); });
  bool released = store.force_release(ctx, a.name);
  // An override must leave a trace: say who broke whose lock (always, not only with -v).
  LogFields f = {{"key", a.name},
                 {"store", store.url()},
                 {"uid", std::int64_t{::getuid()}},
                 {"released", released}};
  if (released) {
    f.emplace_back("previous_fencing_token", before.fencing_token);
    f.emplace_back("previous_holder", holder_text(before));
  }
  log_line(LogLevel::notice, "force_release",
           "release --force of " + shown_name(a.name) + " on " + store.url() + " by uid " +
               std::to_string(::getuid()) + ": " +
               (released ? "released (was held by " + holder_text(before) + ", fencing token " +
                               std::to_string(before.fencing_token) + ")"
                         : std::string("the lock was not held")),
           f);
  if (g.json) {
    json j = {{"name", a.name}, {"released", released}, {"store", store.url()}};
    if (released) j["previous"] = info_json(before);
    std::cout << dump(j) << "\n";
  } else {
    std::cout << (released ? "released " : "not held: ") << shown_name(a.name) << "\n";
  }
  return released ? kOk : kFalse;
}

template <typename Fn>
void run_guarded(Fn fn, const char* command, const InspectArgs& args, const GlobalArgs& g,
                 int* exit_code) {
  try {
    start_command(g, command);
    *exit_code = fn(args, g);
  } catch (const Error& e) {
    *exit_code = report(e);
  }
}

}  // namespace

void add_inspect_commands(CLI::App& app, const GlobalArgs& global, InspectArgs& args,
                          int* exit_code) {
  const std::string globals = std::string("\n") + kGlobalOptionsHelp;
  auto* st = app.add_subcommand("status",
                                "Show whether a lock is held, by whom, its fencing "
                                "token and remaining TTL");
  st->footer(
      "A lock held by another client (redis-py, etcdctl, ...) shows as held by \"a client "
      "without dlock metadata\", with fencing token 0.\nExit codes: 0 the state was read "
      "(held or free: see the output); 64 usage error; 69 store unreachable or access "
      "refused." +
      globals);
  st->add_option("NAME", args.name, "Lock name")->required()->type_name("");
  st->add_flag("--watch", args.watch,
               "Print a line (with --json: a JSON object) per change of the lock until "
               "interrupted: snapshot, acquired, released, expired, handed_over, changed");

  auto* ld = app.add_subcommand("leader", "Show who leads election NAME (its value and term)");
  ld->footer(
      "The leader of an election that `dlock elect` (or dlock::Election) campaigns in: its "
      "published value, its term (strictly increasing) and its holder. With --watch, a line "
      "per change of leader or value until interrupted.\nExit codes: 0 read; 64 usage error; "
      "69 store unreachable or access refused." +
      globals);
  ld->add_option("NAME", args.name, "Election name")->required()->type_name("");
  ld->add_flag("--watch", args.watch, "Print a line per change of leader until interrupted");
  ld->callback(
      [&global, &args, exit_code] { run_guarded(leader, "leader", args, global, exit_code); });
  st->callback(
      [&global, &args, exit_code] { run_guarded(status, "status", args, global, exit_code); });

  auto* ls = app.add_subcommand("list", "List the held locks whose names start with PREFIX");
  ls->footer(
      "Exit codes: 0 listed (possibly none); 64 usage error; 69 store unreachable or "
      "access refused." +
      globals);
  ls->add_option("PREFIX", args.prefix, "Only names starting with this (default: all)")
      ->type_name("");
  ls->callback([&global, &args, exit_code] { run_guarded(list, "list", args, global, exit_code); });

  auto* rel = app.add_subcommand(
      "release", "Operator's override: delete a lock whoever holds it (logged to stderr)");
  rel->footer(
      "The holder notices at its next renewal (`dlock run` then terminates its "
      "command and exits 76). Use the fencing token to keep a stale holder out of "
      "the protected resource. --force has no environment variable on purpose: the "
      "confirmation must be typed.\nExit codes: 0 released; 1 the lock was not held; 64 "
      "usage error (e.g. no --force); 69 store unreachable or access refused." +
      globals);
  rel->add_flag("--force", args.force, "Required: confirms the override");
  rel->add_option("NAME", args.name, "Lock name")->required()->type_name("");
  rel->callback(
      [&global, &args, exit_code] { run_guarded(release, "release", args, global, exit_code); });
}

}  // namespace dlock::cli
