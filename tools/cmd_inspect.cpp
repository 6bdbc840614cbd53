#include "cmd_inspect.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"

namespace dlock::cli {
namespace {

using nlohmann::json;

std::string shown_name(const std::string& key) {
  return json(key).dump(-1, ' ', false, json::error_handler_t::replace);
}

json info_json(const LockInfo& i) {
  json j = {{"name", i.key}, {"held", i.held}};
  if (!i.held) return j;
  j["fencing_token"] = i.fencing_token;
  j["ttl_remaining_ms"] = i.ttl_remaining.count();
  j["owner"] = {{"host", i.owner.host},
                {"pid", i.owner.pid},
                {"text", i.owner.text},
                {"acquired_unix_ms", i.owner.acquired_unix_ms}};
  return j;
}

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

std::string utc_time(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string holder_text(const LockInfo& i) {
  std::string s;
  if (i.owner.pid != 0) s += "pid " + std::to_string(i.owner.pid);
  if (!i.owner.host.empty()) s += (s.empty() ? "" : " ") + std::string("on ") + i.owner.host;
  if (i.owner.acquired_unix_ms != 0) {
    s += (s.empty() ? "" : ", ") + std::string("since ") + utc_time(i.owner.acquired_unix_ms);
  }
  return s.empty() ? "unknown" : s;
}

int status(const InspectArgs& a) {
  auto url = resolve_store_url(a.store);
  auto store = open_store(url);
  auto info = store.inspect(Context::with_timeout(std::chrono::seconds(10)), a.name);
  if (a.json) {
    auto j = info_json(info);
    j["store"] = store.url();
    std::cout << dump(j) << "\n";
    return kOk;
  }
  std::cout << "lock " << shown_name(info.key) << " on " << store.url() << ": "
            << (info.held ? "held" : "free") << "\n";
  if (info.held) {
    std::cout << "  fencing token:  " << info.fencing_token << "\n"
              << "  ttl remaining:  " << human_duration(info.ttl_remaining) << "\n"
              << "  holder:         " << holder_text(info) << "\n";
    if (!info.owner.text.empty()) std::cout << "  metadata:       " << info.owner.text << "\n";
  }
  return kOk;
}

int list(const InspectArgs& a) {
  auto store = open_store(resolve_store_url(a.store));
  auto rows = store.list(Context::with_timeout(std::chrono::seconds(30)), a.prefix);
  if (a.json) {
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
  std::printf("%-32s %8s %10s  %s\n", "NAME", "FENCING", "TTL", "HOLDER / METADATA");
  for (auto& r : rows) {
    std::string holder = holder_text(r);
    if (!r.owner.text.empty()) holder += " / " + r.owner.text;
    std::printf("%-32s %8llu %10s  %s\n", shown_name(r.key).c_str(),
                static_cast<unsigned long long>(r.fencing_token),
                human_duration(r.ttl_remaining).c_str(), holder.c_str());
  }
  return kOk;
}

int release(const InspectArgs& a) {
  if (!a.force) {
    std::fprintf(stderr,
                 "dlock release: only an operator's override exists: pass --force (the holder "
                 "loses the lock at its next renewal; `dlock run` then stops its command)\n");
    return kUsage;
  }
  auto store = open_store(resolve_store_url(a.store));
  const auto ctx = Context::with_timeout(std::chrono::seconds(10));
  auto before = store.inspect(ctx, a.name);
  bool released = store.force_release(ctx, a.name);
  // An override must leave a trace: say who broke whose lock.
  std::fprintf(stderr, "dlock: release --force of %s on %s by uid %u: %s\n",
               shown_name(a.name).c_str(), store.url().c_str(), ::getuid(),
               released ? ("released (was held by " + holder_text(before) + ", fencing token " +
                           std::to_string(before.fencing_token) + ")")
                              .c_str()
                        : "the lock was not held");
  if (a.json) {
    json j = {{"name", a.name}, {"released", released}, {"store", store.url()}};
    if (released) j["previous"] = info_json(before);
    std::cout << dump(j) << "\n";
  } else {
    std::cout << (released ? "released " : "not held: ") << shown_name(a.name) << "\n";
  }
  return released ? kOk : kFalse;
}

void add_common(CLI::App* sub, InspectArgs& args) {
  sub->add_option("--store", args.store,
                  "Store URL (default: $DLOCK_STORE, else the embedded file:// store)")
      ->type_name("URL");
  sub->add_flag("--json", args.json, "Print JSON for scripts instead of text");
}

template <typename Fn>
void run_guarded(Fn fn, const InspectArgs& args, int* exit_code) {
  try {
    *exit_code = fn(args);
  } catch (const Error& e) {
    *exit_code = report(e);
  }
}

}  // namespace

void add_inspect_commands(CLI::App& app, InspectArgs& args, int* exit_code) {
  auto* st = app.add_subcommand("status",
                                "Show whether a lock is held, by whom, its fencing "
                                "token and remaining TTL");
  st->footer(
      std::string("Exit codes: 0 the state was read (held or free: see the output); 64 "
                  "usage error; 69 store unreachable or access refused."));
  st->add_option("NAME", args.name, "Lock name")->required()->type_name("");
  add_common(st, args);
  st->callback([&args, exit_code] { run_guarded(status, args, exit_code); });

  auto* ls = app.add_subcommand("list", "List the held locks whose names start with PREFIX");
  ls->footer(
      "Exit codes: 0 listed (possibly none); 64 usage error; 69 store unreachable or "
      "access refused.");
  ls->add_option("PREFIX", args.prefix, "Only names starting with this (default: all)")
      ->type_name("");
  add_common(ls, args);
  ls->callback([&args, exit_code] { run_guarded(list, args, exit_code); });

  auto* rel = app.add_subcommand(
      "release", "Operator's override: delete a lock whoever holds it (logged to stderr)");
  rel->footer(
      "The holder notices at its next renewal (`dlock run` then terminates its "
      "command and exits 76). Use the fencing token to keep a stale holder out of "
      "the protected resource.\nExit codes: 0 released; 1 the lock was not held; 64 "
      "usage error (e.g. no --force); 69 store unreachable or access refused.");
  rel->add_flag("--force", args.force, "Required: confirms the override");
  rel->add_option("NAME", args.name, "Lock name")->required()->type_name("");
  add_common(rel, args);
  rel->callback([&args, exit_code] { run_guarded(release, args, exit_code); });
}

}  // namespace dlock::cli
