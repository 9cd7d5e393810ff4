// The allocator's mutex: a three-state futex lock (unlocked, locked,
// locked with waiters). Never allocates, safe before main and in atfork
// handlers, spins briefly before sleeping in the kernel.
//
// Lock ranks (Go's lockrank.go). A thread holding a lock may only take locks
// of a higher rank; each lock is declared with its rank:
//   1. kInit      g_init_lock          (lifecycle.cc; start-up only)
//   2. kRegistry  thread-cache registry (thread_cache.cc)
//   3. kCentral   CentralList::lock_   (central_list.h; one class at a time)
//   4. kPageHeap  PageHeap::lock_      (page_heap.h)
//   5. kSampler   g_sample_lock        (sampler.h)
//   6. kMetadata  FixedAlloc locks     (metadata_alloc.h: spans, thread caches,
//                                       sample records; leaves)
// Debug builds check the order on every Lock() (FatalInternal on a
// violation); release builds do not store it, so that an object holding a
// Mutex and otherwise zero fields is all zero and sits in .bss (no RSS until
// written: g_central is 80 KiB).
// fork() takes every lock from kRegistry up in rank order (lifecycle.cc), the
// central lists and the FixedAllocs each all at once, and releases them
// after; it never takes g_init_lock (start-up calls pthread_atfork under it).
#pragma once

#include <atomic>
#include <cstdint>

namespace spanalloc {

enum class LockRank : uint8_t { kInit = 1, kRegistry, kCentral, kPageHeap, kSampler, kMetadata };
inline constexpr int kNumLockRanks = 7;  // ranks are 1..6

// The order check, for debug builds and tests. held[r] counts the locks of
// rank r the thread holds; taking `rank` is allowed when no held lock has a
// rank >= it, or, while the thread forks (same-rank locks taken together),
// a rank > it.
bool LockRankAllows(const uint8_t (&held)[kNumLockRanks], LockRank rank, bool forking);
const char *LockRankName(LockRank rank);

#ifndef NDEBUG
// This thread's held locks (debug builds): checked before, counted after
// every acquisition.
void LockRankAcquire(LockRank rank);
void LockRankRelease(LockRank rank);
// fork() handlers: same-rank locks are taken together from Begin to End;
// in the child, the forking thread's record is cleared.
void LockRankForkBegin();
void LockRankForkEnd();
#endif

class Mutex {
 public:
#ifndef NDEBUG
  constexpr explicit Mutex(LockRank rank) : rank_(rank) {}
#else
  constexpr explicit Mutex(LockRank) {}
#endif
  void Lock() {
#ifndef NDEBUG
    LockRankAcquire(rank_);
#endif
    uint32_t expected = 0;
    if (__builtin_expect(state_.compare_exchange_strong(expected, 1, std::memory_order_acquire), 1)) return;
    LockSlow();
  }
  bool TryLock() {
    uint32_t expected = 0;
    bool ok = state_.compare_exchange_strong(expected, 1, std::memory_order_acquire);
#ifndef NDEBUG
    if (ok) LockRankAcquire(rank_);
#endif
    return ok;
  }
  void Unlock() {
#ifndef NDEBUG
    LockRankRelease(rank_);
#endif
    if (__builtin_expect(state_.exchange(0, std::memory_order_release) != 1, 0)) Wake();
  }
  // After fork() in the child: only the forking thread exists, and it held
  // every lock, so each is simply made free again.
  void ResetAfterFork() {
#ifndef NDEBUG
    LockRankRelease(rank_);
#endif
    state_.store(0, std::memory_order_relaxed);
  }
  bool IsHeld() const { return state_.load(std::memory_order_relaxed) != 0; }
#ifndef NDEBUG
  LockRank rank() const { return rank_; }
#endif

 private:
  void LockSlow();
  void Wake();
  std::atomic<uint32_t> state_{0};  // 0 free, 1 locked, 2 locked with waiters
#ifndef NDEBUG
  const LockRank rank_;
#endif
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
