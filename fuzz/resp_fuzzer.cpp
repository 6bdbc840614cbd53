// Fuzzes the RESP reply parser (RespParser, hiredis's reader underneath) and the Pipeline that
// matches replies to requests, with bytes as a Redis server, or anything pretending to be one,
// could send them. Checks that no input crashes either, and that splitting the same bytes
// into one-byte reads gives exactly the replies (and the error) of one big read.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "redis/pipeline.hpp"
#include "redis/resp.hpp"

namespace {

using dlock::detail::redis::Outcome;
using dlock::detail::redis::Pipeline;
using dlock::detail::redis::RespParser;
using dlock::detail::redis::RespValue;

bool same(const RespValue& a, const RespValue& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.elements.size(); ++i) {
    if (!same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

struct Parsed {
  std::vector<RespValue> replies;
  bool malformed = false;
};

// Feeds `data` in reads of `chunk` bytes, pulling every complete reply after each read.
Parsed parse(const std::uint8_t* data, std::size_t size, std::size_t chunk) {
  Parsed out;
  RespParser parser;
  try {
    for (std::size_t at = 0; at < size; at += chunk) {
      const std::size_t n = std::min(chunk, size - at);
      parser.feed(reinterpret_cast<const char*>(data) + at, n);
      while (auto v = parser.next()) out.replies.push_back(std::move(*v));
    }
  } catch (const std::runtime_error&) {
    out.malformed = true;
  }
  return out;
}

// The subscriber's test for a pub/sub delivery (src/redis/subscriber.cpp).
bool is_message(const RespValue& v) {
  return v.type == RespValue::Type::array && v.elements.size() == 3 &&
         v.elements[0].type == RespValue::Type::string &&
         (v.elements[0].str == "message" || v.elements[0].str == "smessage");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Parsed whole = parse(data, size, size == 0 ? 1 : size);
  if (size <= 4096) {  // Byte-wise reads cost a parser call per byte: keep them small.
    const Parsed bytewise = parse(data, size, 1);
    if (whole.malformed != bytewise.malformed || whole.replies.size() != bytewise.replies.size()) {
      __builtin_trap();
    }
    for (std::size_t i = 0; i < whole.replies.size(); ++i) {
      if (!same(whole.replies[i], bytewise.replies[i])) __builtin_trap();
    }
  }

  // The same bytes through a pipeline with a few requests in flight and pub/sub routing.
  std::size_t answered = 0, pushed = 0;
  Pipeline pipeline(is_message, [&](RespValue&& v) {
    pushed += v.elements.size();  // Has 3 elements: checked by is_message.
  });
  for (int i = 0; i < 8; ++i) {
    pipeline.enqueue("*1\r\n$4\r\nPING\r\n", [&](Outcome&& o) {
      if (o.ok()) ++answered;
    });
  }
  (void)pipeline.take_batch();
  const std::size_t half = size / 2;
  const char* bytes = reinterpret_cast<const char*>(data);
  if (pipeline.feed(bytes, half)) pipeline.feed(bytes + half, size - half);
  pipeline.fail_all({});
  return 0;
}
