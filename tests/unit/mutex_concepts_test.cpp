// dlock::Mutex meets the standard Lockable and TimedLockable requirements.
#include <gtest/gtest.h>

#include <chrono>
#include <concepts>
#include <mutex>

#include "dlock/dlock.hpp"
#include "dlock/memory.hpp"

namespace {

template <class M>
concept BasicLockable = requires(M& m) {
  m.lock();
  m.unlock();
};

template <class M>
concept Lockable = BasicLockable<M> && requires(M& m) {
  { m.try_lock() } -> std::same_as<bool>;
};

template <class M>
concept TimedLockable = Lockable<M> && requires(M& m) {
  { m.try_lock_for(std::chrono::milliseconds(1)) } -> std::same_as<bool>;
  { m.try_lock_until(std::chrono::steady_clock::now()) } -> std::same_as<bool>;
  { m.try_lock_until(std::chrono::system_clock::now()) } -> std::same_as<bool>;
};

static_assert(BasicLockable<dlock::Mutex>);
static_assert(Lockable<dlock::Mutex>);
static_assert(TimedLockable<dlock::Mutex>);
static_assert(noexcept(std::declval<dlock::Mutex&>().unlock()), "unlock must not throw");
static_assert(noexcept(std::declval<dlock::Mutex&>().try_lock()));
static_assert(!std::is_copy_constructible_v<dlock::Lease>);
static_assert(std::is_nothrow_move_constructible_v<dlock::Lease>);
static_assert(std::is_nothrow_destructible_v<dlock::Lease>);
static_assert(std::is_base_of_v<std::system_error, dlock::Error>);

TEST(MutexConcepts, TypedConfigAndTimedLockWithSystemClock) {
  dlock::Store s = dlock::open(dlock::MemoryConfig{.name = "concepts"});
  dlock::Mutex a(s, "m");
  dlock::Mutex b(dlock::open(dlock::MemoryConfig{.name = "concepts"}), "m");
  std::unique_lock la(a);
  EXPECT_FALSE(b.try_lock_until(std::chrono::system_clock::now() + std::chrono::milliseconds(50)));
  la.unlock();
  EXPECT_TRUE(b.try_lock_until(std::chrono::system_clock::now() + std::chrono::seconds(5)));
  b.unlock();
}

}  // namespace
