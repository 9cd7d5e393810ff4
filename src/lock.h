// The allocator's mutex: a three-state futex lock (unlocked, locked,
// locked with waiters). Never allocates, safe before main and in atfork
// handlers, spins briefly before sleeping in the kernel.
//
// Lock order (a thread holding a lock may only take locks ranked below it):
//   1. ThreadCache registry lock       (thread_cache.cc)
//   2. CentralList::lock_, by class    (central_list.h; one at a time)
//   3. PageHeap::lock_                 (page_heap.h)
//   4. FixedAlloc locks                (metadata_alloc.h; leaf locks)
//      g_sample_lock                   (sampler.h; a leaf lock too)
// fork() takes them all in this order (allocator.cc) and releases them after.
#pragma once

#include <atomic>
#include <cstdint>

namespace spanalloc {

class Mutex {
 public:
  constexpr Mutex() = default;
  void Lock() {
    uint32_t expected = 0;
    if (__builtin_expect(state_.compare_exchange_strong(expected, 1, std::memory_order_acquire), 1))
      return;
    LockSlow();
  }
  bool TryLock() {
    uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire);
  }
  void Unlock() {
    if (__builtin_expect(state_.exchange(0, std::memory_order_release) != 1, 0)) Wake();
  }
  // After fork() in the child: only the forking thread exists, and it held
  // every lock, so each is simply made free again.
  void ResetAfterFork() { state_.store(0, std::memory_order_relaxed); }
  bool IsHeld() const { return state_.load(std::memory_order_relaxed) != 0; }

 private:
  void LockSlow();
  void Wake();
  std::atomic<uint32_t> state_{0};  // 0 free, 1 locked, 2 locked with waiters
};

class MutexLock {
 public:
  explicit MutexLock(Mutex &m) : m_(m) { m_.Lock(); }
  ~MutexLock() { m_.Unlock(); }
  MutexLock(const MutexLock &) = delete;
  MutexLock &operator=(const MutexLock &) = delete;

 private:
  Mutex &m_;
};

}  // namespace spanalloc
