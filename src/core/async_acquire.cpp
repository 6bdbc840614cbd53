#include "core/async_acquire.hpp"

#include "core/renewal_scheduler.hpp"
#include "core/store_core.hpp"
#include "core/worker_pool.hpp"

namespace dlock::detail {

using Kind = AcquireFsm::Step::Kind;

namespace {

// A store's completion may run on another thread before the call that started it has returned
// (a wait whose deadline has passed completes at once). Were it to continue the operation
// there, the next step could finish it and destroy the session still inside that call. The
// gate holds such an early completion until the starting call has returned.
class CallGate {
 public:
  /// Runs `next` now if the starting call has returned, otherwise once it does.
  void then(std::function<void()> next) {
    {
      std::lock_guard lk(mu_);
      if (!returned_) {
        pending_ = std::move(next);
        return;
      }
    }
    next();
  }
  /// The starting call has returned: runs a completion that came early.
  void open() {
    std::function<void()> next;
    {
      std::lock_guard lk(mu_);
      returned_ = true;
      next.swap(pending_);
    }
    if (next) next();
  }

 private:
  std::mutex mu_;
  bool returned_ = false;
  std::function<void()> pending_;
};

}  // namespace

AsyncAcquire::AsyncAcquire(std::shared_ptr<StoreCore> core, Done done)
    : core_(std::move(core)), done_(std::move(done)) {}

std::shared_ptr<AsyncAcquire> AsyncAcquire::start(std::shared_ptr<StoreCore> core, std::string key,
                                                  const LockOptions& opts, const Context& ctx,
                                                  bool single_attempt, Done done) {
  std::shared_ptr<AsyncAcquire> op(new AsyncAcquire(core, std::move(done)));
  op->self_ = op;
  std::weak_ptr<AsyncAcquire> weak = op;
  // The caller's stop token and cancel() both stop the operation through one source.
  op->link_.emplace(ctx.stop_token(), std::function<void()>([weak] {
                      if (auto o = weak.lock()) o->stop_.request_stop();
                    }));
  try {
    op->fsm_.emplace(core->shared(), std::move(key), opts,
                     Context::with_deadline(ctx.deadline(), op->stop_.get_token()), single_attempt);
  } catch (...) {
    op->finish(std::current_exception(), std::nullopt);
    return op;
  }
  if (!op->fsm_->waits()) {
    op->begin();
    return op;
  }
  // In the local line: leave it when stopped or at the deadline (waits and attempts end on
  // their own, bounded by the same context).
  op->watch_stop_.emplace(op->stop_.get_token(), std::function<void()>([weak] {
                            if (auto o = weak.lock()) o->on_stop_or_deadline();
                          }));
  const auto deadline = op->fsm_->context().deadline();
  if (deadline != Context::clock::time_point::max()) {
    core->shared()->scheduler.post_at(deadline, [weak] {
      if (auto o = weak.lock()) o->on_stop_or_deadline();
    });
  }
  std::unique_lock lk(op->mu_);
  op->phase_ = Phase::line;
  lk.unlock();
  auto turn = core->line().join(op->fsm_->request().key, [weak] {
    auto o = weak.lock();
    if (!o) return;
    {
      std::lock_guard g(o->mu_);
      if (o->phase_ != Phase::line) return;
      o->phase_ = Phase::talking;
    }
    o->post([](AsyncAcquire& a) { a.begin(); });
  });
  lk.lock();
  if (op->phase_ == Phase::done) return op;  // Finished meanwhile: the turn is given back.
  op->turn_.emplace(std::move(turn));
  return op;
}

void AsyncAcquire::post(std::function<void(AsyncAcquire&)> fn) {
  WorkerPool::process_wide().post([self = shared_from_this(), fn = std::move(fn)] { fn(*self); });
}

void AsyncAcquire::on_stop_or_deadline() {
  {
    std::lock_guard lk(mu_);
    if (phase_ != Phase::line) return;
    phase_ = Phase::talking;  // Now ours to finish.
  }
  post([](AsyncAcquire& a) { a.run(a.fsm_->gave_up_in_line()); });
}

void AsyncAcquire::begin() {
  Step step;
  try {
    session_ = core_->shared()->backend->start_acquire(fsm_->request());
    step = fsm_->start();
  } catch (...) {
    step = fsm_->threw(std::current_exception());
  }
  run(std::move(step));
}

void AsyncAcquire::run(Step step) {
  switch (step.kind) {
    case Kind::attempt: {
      auto gate = std::make_shared<CallGate>();
      auto answered = [self = shared_from_this(), gate](Attempt a, std::exception_ptr e) {
        auto attempt = std::make_shared<Attempt>(std::move(a));
        gate->then([self, attempt, e] {
          self->post([attempt, e](AsyncAcquire& op) {
            op.run(e ? op.fsm_->threw(e) : op.fsm_->attempted(std::move(*attempt)));
          });
        });
      };
      if (session_->async_attempt(fsm_->context(), answered)) {
        gate->open();
        return;
      }
      post([](AsyncAcquire& op) {  // A blocking round trip on the pool.
        Step next;
        try {
          next = op.fsm_->attempted(op.session_->attempt(op.fsm_->context()));
        } catch (...) {
          next = op.fsm_->threw(std::current_exception());
        }
        op.run(std::move(next));
      });
      return;
    }
    case Kind::wait:
      wait(std::move(step));
      return;
    case Kind::won:
      finish(nullptr, fsm_->take_lease());
      return;
    case Kind::lost:
      session_->abandon();
      finish(nullptr, std::nullopt);
      return;
    case Kind::failed:
      if (auto late = fsm_->take_late_grant()) {
        core_->shared()->backend->release(Context::with_timeout(kCleanupTimeout), *late);
      }
      if (session_) session_->abandon();
      finish(step.error, std::nullopt);
      return;
  }
}

void AsyncAcquire::wait(Step step) {
  auto gate = std::make_shared<CallGate>();
  auto ended = [self = shared_from_this(), gate](bool notified, std::exception_ptr e) {
    gate->then([self, notified, e] {
      self->post([notified, e](AsyncAcquire& op) {
        op.run(e ? op.fsm_->wait_threw(e) : op.fsm_->waited(notified));
      });
    });
  };
  if (session_->async_wait(fsm_->context(), step.until, ended)) {
    gate->open();
    return;
  }
  // No native wait: a timer (the backoff bounds it, so a release is seen within one backoff),
  // ended early by a stop.
  auto once = std::make_shared<std::atomic<bool>>(false);
  auto fire = [once, ended] {
    if (!once->exchange(true)) ended(false, nullptr);
  };
  wait_once_ = once;
  watch_stop_.emplace(fsm_->context().stop_token(), std::function<void()>(fire));
  core_->shared()->scheduler.post_at(step.until, fire);
  gate->open();  // A stop that came before the callback was set fires it inside emplace().
}

void AsyncAcquire::finish(std::exception_ptr error, std::optional<Lease> lease) {
  std::optional<LocalQueue::Turn> turn;
  std::shared_ptr<AsyncAcquire> keep;
  {
    std::lock_guard lk(mu_);
    phase_ = Phase::done;
    if (turn_) {
      turn.emplace(std::move(*turn_));
      turn_.reset();
    }
    keep.swap(self_);
  }
  turn.reset();  // The next local waiter's turn.
  // A timer wait's stop callback holds this operation (through its completion): drop it, or
  // the operation would keep itself alive after it finished.
  watch_stop_.reset();
  link_.reset();
  session_.reset();
  Done done = std::move(done_);
  if (done) done(std::move(error), std::move(lease));
}

}  // namespace dlock::detail
