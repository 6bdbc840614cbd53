#include "redis/resp.hpp"

#include <hiredis/hiredis.h>

#include <stdexcept>
#include <string>

namespace dlock::detail::redis {
namespace {

// A reply may claim any array length before sending one element, and hiredis allocates the
// element table at once (`*400000000\r\n` asks for 3 GB). Bound the element slots that one
// reply may claim: dlock's largest replies (SCAN pages of 1000, CLUSTER SLOTS) need far
// fewer, and a broken or hostile server then gets a malformed-reply error, not our memory.
constexpr long long kMaxReplyElements = 1 << 20;

// What the array factory below checks, per parser (the reader's privdata).
struct ElementBudget {
  long long left = kMaxReplyElements;
  bool exceeded = false;
};

const redisReplyObjectFunctions* hiredis_functions = nullptr;  // hiredis's own factory.

// hiredis's createArray, refusing (NULL: hiredis reports an error) past the budget. A
// template on the callback's type, whose count parameter differs between hiredis versions.
template <typename Fn>
struct BoundedArray;
template <typename Count>
struct BoundedArray<void* (*)(const redisReadTask*, Count)> {
  static void* create(const redisReadTask* task, Count elements) {
    auto* budget = static_cast<ElementBudget*>(task->privdata);
    if (budget != nullptr) {
      if (static_cast<long long>(elements) > budget->left) {
        budget->exceeded = true;
        return nullptr;
      }
      budget->left -= static_cast<long long>(elements);
    }
    return hiredis_functions->createArray(task, elements);
  }
};

// hiredis's factory with the bounded createArray; `defaults` is a fresh reader's.
redisReplyObjectFunctions* bounded_functions(const redisReplyObjectFunctions* defaults) {
  static redisReplyObjectFunctions table = [defaults] {
    hiredis_functions = defaults;
    redisReplyObjectFunctions t = *defaults;
    t.createArray = &BoundedArray<decltype(t.createArray)>::create;
    return t;
  }();
  return &table;
}

RespValue convert(const redisReply* r) {
  RespValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RespValue::Type::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RespValue::Type::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RespValue::Type::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RespValue::Type::integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RespValue::Type::array;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      v.type = RespValue::Type::nil;
  }
  return v;
}

}  // namespace

std::string format_command(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* out = nullptr;
  int n = redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0 || out == nullptr) throw std::bad_alloc();
  std::string s(out, static_cast<std::size_t>(n));
  redisFreeCommand(out);
  return s;
}

struct RespParser::Impl {
  redisReader* reader = redisReaderCreate();
  ElementBudget budget;
  ~Impl() { redisReaderFree(reader); }
};

RespParser::RespParser() : impl_(std::make_unique<Impl>()) {
  if (!impl_->reader) throw std::bad_alloc();
  impl_->reader->fn = bounded_functions(impl_->reader->fn);
  impl_->reader->privdata = &impl_->budget;
}
RespParser::~RespParser() = default;

void RespParser::feed(const char* data, std::size_t size) {
  if (redisReaderFeed(impl_->reader, data, size) != REDIS_OK) {
    throw std::runtime_error("RESP reader: cannot buffer input");
  }
}

std::optional<RespValue> RespParser::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(impl_->reader, &raw) != REDIS_OK) {
    if (impl_->budget.exceeded) {
      throw std::runtime_error("malformed RESP: a reply claims more than " +
                               std::to_string(kMaxReplyElements) + " array elements");
    }
    throw std::runtime_error(std::string("malformed RESP: ") + impl_->reader->errstr);
  }
  if (raw == nullptr) return std::nullopt;
  impl_->budget = ElementBudget{};  // A whole reply arrived: the next one starts afresh.
  auto* reply = static_cast<redisReply*>(raw);
  RespValue v = convert(reply);
  freeReplyObject(reply);
  return v;
}

}  // namespace dlock::detail::redis
