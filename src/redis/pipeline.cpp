#include "redis/pipeline.hpp"

#include <algorithm>
#include <stdexcept>

namespace dlock::detail::redis {

Pipeline::Pipeline(PushFilter is_push, PushHandler on_push)
    : is_push_(std::move(is_push)), on_push_(std::move(on_push)) {}

void Pipeline::enqueue(std::string wire, ReplyHandler handler, std::uint64_t tag) {
  unwritten_.push_back(Entry{std::move(wire), std::move(handler), tag, {}});
}

void Pipeline::withdraw(std::uint64_t tag) {
  std::erase_if(unwritten_, [tag](const Entry& e) { return e.tag == tag; });
}

std::string Pipeline::take_batch(clock::time_point now, std::size_t max) {
  const std::size_t n = std::min(max, unwritten_.size());
  if (n == 1) {  // The common case: one request, its bytes moved, not copied.
    Entry& e = unwritten_.front();
    std::string batch = std::move(e.wire);
    e.wire = std::string();
    e.sent = now;
    in_flight_.push_back(std::move(e));
    unwritten_.pop_front();
    return batch;
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += unwritten_[i].wire.size();
  std::string batch;
  batch.reserve(total);
  for (std::size_t i = 0; i < n; ++i) {
    Entry& e = unwritten_.front();
    batch += e.wire;
    e.wire = std::string();
    e.sent = now;
    in_flight_.push_back(std::move(e));
    unwritten_.pop_front();
  }
  return batch;
}

std::optional<Pipeline::clock::time_point> Pipeline::oldest_sent() const {
  if (in_flight_.empty()) return std::nullopt;
  return in_flight_.front().sent;
}

bool Pipeline::deliver(RespValue&& reply) {
  if (is_push_ && is_push_(reply)) {
    if (on_push_) on_push_(std::move(reply));
    return true;
  }
  if (in_flight_.empty()) return false;  // A reply to nothing: the stream is out of step.
  Entry e = std::move(in_flight_.front());
  in_flight_.pop_front();
  e.handler(Outcome(std::move(reply)));
  return true;
}

bool Pipeline::feed(const char* data, std::size_t size) {
  try {
    parser_->feed(data, size);
    while (auto reply = parser_->next()) {
      if (!deliver(std::move(*reply))) return false;
    }
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

void Pipeline::fail_all(const Failure& why) {
  std::deque<Entry> gone;
  gone.swap(in_flight_);
  for (auto& e : unwritten_) gone.push_back(std::move(e));
  unwritten_.clear();
  parser_.emplace();
  for (auto& e : gone) e.handler(Outcome(why));
}

}  // namespace dlock::detail::redis
