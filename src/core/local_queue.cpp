#include "core/local_queue.hpp"

namespace dlock::detail {

LocalQueue::Turn LocalQueue::enter(const std::string& key, const Context& ctx) {
  std::unique_lock lk(mu_);
  auto& line = lines_[key];
  auto it = line.emplace(line.end());
  if (line.size() == 1) {
    it->head = true;
    return Turn(this, key, it);
  }
  auto is_head = [&] { return it->head; };
  if (ctx.has_deadline()) {
    it->cv.wait_until(lk, ctx.stop_token(), ctx.deadline(), is_head);
  } else {
    it->cv.wait(lk, ctx.stop_token(), is_head);
  }
  if (it->head) return Turn(this, key, it);
  lk.unlock();
  leave(key, it);  // Timed out or cancelled while still in line.
  return Turn();
}

std::size_t LocalQueue::size(const std::string& key) const {
  std::lock_guard lk(mu_);
  auto it = lines_.find(key);
  return it == lines_.end() ? 0 : it->second.size();
}

LocalQueue::Turn LocalQueue::join(const std::string& key, std::function<void()> on_head) {
  std::unique_lock lk(mu_);
  auto& line = lines_[key];
  auto it = line.emplace(line.end());
  if (line.size() == 1) {
    it->head = true;
    lk.unlock();
    on_head();
  } else {
    it->on_head = std::move(on_head);
  }
  return Turn(this, key, it);
}

void LocalQueue::leave(const std::string& key, Line::iterator it) {
  std::function<void()> tell;
  {
    std::lock_guard lk(mu_);
    auto found = lines_.find(key);
    auto& line = found->second;
    const bool was_head = it->head;
    line.erase(it);
    if (line.empty()) {
      lines_.erase(found);
    } else if (was_head) {
      Waiter& next = line.front();
      next.head = true;
      next.cv.notify_one();
      tell = std::move(next.on_head);
    }
  }
  if (tell) tell();
}

}  // namespace dlock::detail
