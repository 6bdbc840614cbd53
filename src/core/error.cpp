#include "dlock/error.hpp"

#include <string>

namespace dlock {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "dlock"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_argument:
        return "invalid argument";
      case errc::timeout:
        return "timed out";
      case errc::cancelled:
        return "cancelled";
      case errc::not_held:
        return "lock not held";
      case errc::lock_lost:
        return "lock lost";
      case errc::unavailable:
        return "store unavailable";
      case errc::auth_failed:
        return "authentication failed";
      case errc::protocol_error:
        return "protocol error";
      case errc::closed:
        return "store closed";
      case errc::not_found:
        return "not found";
      case errc::already_exists:
        return "already exists";
      case errc::unsupported:
        return "unsupported";
      case errc::would_deadlock:
        return "would deadlock";
    }
    return "unknown dlock error";
  }
};

std::string compose(const std::error_code& code, const std::string& store, const std::string& key,
                    const std::string& step, const std::string& detail) {
  std::string s = "dlock: ";
  s += store.empty() ? "core" : store;
  if (!key.empty()) s += ": key '" + key + "'";
  if (!step.empty()) s += ": " + step;
  s += ": " + code.message();
  if (!detail.empty()) s += ": " + detail;
  return s;
}

}  // namespace

const std::error_category& category() noexcept {
  static const Category c;
  return c;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

Error::Error(errc code, std::string store, std::string key, std::string step, std::string detail)
    : Error(make_error_code(code), std::move(store), std::move(key), std::move(step),
            std::move(detail)) {}

Error::Error(std::error_code code, std::string store, std::string key, std::string step,
             std::string detail)
    : std::system_error(code),
      store_(std::move(store)),
      key_(std::move(key)),
      step_(std::move(step)),
      detail_(std::move(detail)),
      what_(compose(code, store_, key_, step_, detail_)) {}

}  // namespace dlock
