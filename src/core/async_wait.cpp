#include "core/async_wait.hpp"

#include "core/renewal_scheduler.hpp"

namespace dlock::detail {

std::shared_ptr<AsyncWait> AsyncWait::start(const Context& ctx, time_point until,
                                            AcquireSession::WaitDone done) {
  std::shared_ptr<AsyncWait> w(new AsyncWait(std::move(done)));
  std::weak_ptr<AsyncWait> weak = w;
  RenewalScheduler::process_wide().post_at(std::min(until, ctx.deadline()), [w] {
    w->complete(false);  // Keeps the wait alive until its time.
  });
  w->on_stop_.emplace(ctx.stop_token(), std::function<void()>([weak] {
                        if (auto s = weak.lock()) s->complete(false);
                      }));
  return w;
}

void AsyncWait::complete(bool notified) noexcept {
  if (fired_.exchange(true)) return;
  auto done = std::move(done_);
  if (done) done(notified, nullptr);
}

}  // namespace dlock::detail
