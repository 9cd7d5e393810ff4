// Thread cache (Go's mcache): per-thread free lists, one per size class.
//
// Ownership: a ThreadCache is touched only by its thread, so its lists need
// no lock. The registry of all caches (for statistics and fork) is protected
// by g_registry_lock (lock.h, rank kRegistry); the registry links and the published
// byte figure are the only fields other threads read.
//
// Invariants, per class cl:  length() == number of objects on lists[cl]
//                            length() <= max_length (room >= 0)
// and over all classes: a list may always grow to one batch; growth past
// that keeps sum(max_length * size) <= budget (SPANALLOC_THREAD_CACHE_KB).
// In cpu mode (cpu_cache.h) the caches sit in front of the per-CPU caches:
// refills and flushes go to the CPU's lists (no lock), growth keeps
// sum(max_length * size) <= Budget() below one batch too, and Budget()
// shares SPANALLOC_THREAD_CACHE_KB per CPU between the live caches.
// The fast paths (allocator.h) only pop and push; everything else is here:
// refill from and flush to the central list in batches, growing max_length
// (slow start, like TCP: from 2, doubling to one batch, then a batch at a
// time) while a thread keeps missing, and returning all objects when the
// thread exits.
#pragma once

#include <array>
#include <cstdint>

#include "common.h"
#include "free_list.h"
#include "lock.h"
#include "page_map.h"
#include "sampler.h"
#include "size_classes.h"

namespace spanalloc {

struct ObjectRun;  // central_list.h

// One class's list. 32 bytes so that indexing is a shift; `magic` is the
// divisibility constant of 8 times the class's size (kListMagic) and `limit`
// the bound free() compares the product with (kListLimit), kept here so
// free() finds them beside the list instead of in a separate table: off *
// magic < limit exactly when off = 8 * (p - span start) is 8 times the start
// of one of the span's objects, not of a slot in its tail past the last one.
// A magic and limit of 0 fail free()'s object-start test for every pointer:
// class 0's list (blocks that are not small) and every list of
// g_empty_cache have them, so that free() sends them off the fast path with
// no test of its own (allocator.h).
//
// The list keeps room = max_length - length rather than its length, so that
// free() tests and counts with one instruction: it decrements room and takes
// the slow path when the result is negative (FreeSlowList then adds it back).
// room <= 0 whenever length >= max_length; while sampling (max_length 0) it
// is -length.
struct FreeList {
  void *head = ListEnd();  // ListEnd() when empty (free_list.h)
  int32_t room = 0;
  uint32_t max_length = 0;  // change with set_max_length (room follows)
  uint64_t magic = 0;
  uint64_t limit = 0;

  uint32_t length() const { return uint32_t(int64_t(max_length) - room); }
  void set_length(uint32_t n) { room = int32_t(int64_t(max_length) - n); }
  void set_max_length(uint32_t m) {
    room = int32_t(int64_t(m) - length());
    max_length = m;
  }
};
static_assert(sizeof(FreeList) == 32);
static_assert(sizeof(FreeList) == size_t{1} << kEntryClassShift, "class-map entries hold list offsets (page_map.h)");

// A class's fresh objects (lazy carving, thread_cache.cc): objects a refill
// took as a run from a span whose objects were all free (central_list.h,
// ObjectRun) and not linked yet, so not written: start | count << 48, 0 for
// none. They count in the list's length; malloc pops only the linked
// objects, and when none is left its slow path links the fresh objects on
// the next OS page (and fork, flush and stats see them too). So a page of a
// refill that the thread never uses is never touched. Slow paths only: kept
// beside the lists, not in them (free()'s limit has the list's last word).
struct FreshRun {
  uint64_t word = 0;

  bool empty() const { return word == 0; }
  uint32_t count() const { return uint32_t(word >> 48); }
  char *start() const { return reinterpret_cast<char *>(word & ((uint64_t{1} << 48) - 1)); }
  void set(const void *start, uint32_t count) {  // user addresses are below 2^47
    word = count == 0 ? 0 : reinterpret_cast<uintptr_t>(start) | uint64_t(count) << 48;
  }
  void clear() { word = 0; }
};

// Byte offset of the list of requests of n bytes (n <= 1024) in a thread
// cache: malloc's class and list in one load (2 KiB table).
inline constexpr std::array<uint16_t, 1025> kSmallListOffset = [] {
  std::array<uint16_t, 1025> t{};
  for (size_t n = 0; n <= 1024; n++) t[n] = uint16_t(kClassOfSmall[n] * sizeof(FreeList));
  return t;
}();

// The divisibility magic of 8 times each class's size (size_classes.h's
// rule; class 0's is 0): free() tests 8 * (p - span start), which the
// class-map entry's layout gives it in two instructions (page_map.h).
inline constexpr std::array<uint64_t, kNumClasses> kListMagic = [] {
  std::array<uint64_t, kNumClasses> m{};
  for (uint32_t c = 1; c < kNumClasses; c++) m[c] = ~uint64_t{0} / (8 * uint64_t(kClassShape[c].size)) + 1;
  return m;
}();

// free()'s bound for off * kListMagic[c] (off = 8 * (p - span start)):
// ClassLimit's rule (size_classes.h) for 8 times the size; 0 for class 0.
inline constexpr std::array<uint64_t, kNumClasses> kListLimit = [] {
  std::array<uint64_t, kNumClasses> m{};
  for (uint32_t c = 1; c < kNumClasses; c++) m[c] = ClassLimit(kListMagic[c], 8 * uint64_t(kClassShape[c].size), kClassShape[c].objects);
  return m;
}();

class ThreadCache {
 public:
  FreeList lists[kNumClasses] = {};  // hot: the fast paths touch only this

  // Class cl's fresh objects (FreshRun above).
  const FreshRun &fresh(uint32_t cl) const { return fresh_[cl]; }

  static constexpr uint32_t kInitialMaxLength = 2;  // slow start (thread_cache.cc)
  static constexpr uint32_t kMaxLength = 8192;
  // Least byte budget of one cache in cpu mode, however many threads live.
  static constexpr uint64_t kMinCpuModeBudget = 64 * 1024;

  constexpr ThreadCache() {
    for (uint32_t cl = 0; cl < kNumClasses; cl++) {
      lists[cl].magic = kListMagic[cl];
      lists[cl].limit = kListLimit[cl];
    }
  }
  // g_empty_cache's: every magic 0.
  struct EmptyTag {};
  explicit constexpr ThreadCache(EmptyTag) {}

  // Slow path of malloc: lists[cl] is empty (or this is the empty cache).
  // Returns nullptr with errno ENOMEM when the OS refuses memory.
  SPANALLOC_SAMPLE_PATH static void *AllocSlow(uint32_t cl) noexcept;
  // Slow path of free: lists[cl] is full (or this is the empty cache).
  static void FreeSlow(void *p, uint32_t cl) noexcept;
  // The same, given the current cache's list l rather than its class: the
  // fast paths then need not keep the class in a register. FreeSlowList is
  // entered with l->room already decremented (allocator.h) and restores it.
  SPANALLOC_SAMPLE_PATH static void *AllocSlowList(FreeList *l) noexcept;
  SPANALLOC_SAMPLE_PATH static void FreeSlowList(void *p, FreeList *l) noexcept;
  // malloc popped p, the head of l, and found its link implausible: l is
  // empty (p is ListEnd(): AllocSlowList), or the link was overwritten
  // (reported; aborts).
  SPANALLOC_SAMPLE_PATH static void *PopImplausible(void *p, FreeList *l) noexcept;
  // Returns every cached object to the central lists (thread exit, trim,
  // a fork child's dead threads), in cpu mode too.
  void FlushAll();
  // Called by the thread-exit destructor and by tests.
  static void DestroyCurrent();

  // Fork support (allocator.cc calls these under its handlers).
  static void LockRegistry();
  static void UnlockRegistry();
  // The lock of the thread caches' own allocator (rank kMetadata: fork
  // takes it last, lock.h).
  static Mutex &CacheAllocLock();
  static void AfterForkChild();

  // Statistics: caches alive and bytes cached (each class as of its last slow path in that cache).
  static void RegistryStats(uint64_t *caches, uint64_t *bytes);
  // Refreshes this cache's figure for RegistryStats (its own thread only):
  // every class, or only class cl (what a slow path of cl changed).
  void PublishBytes();
  void PublishClass(uint32_t cl);

  // This thread's sampling countdowns (sampler.h).
  SampleCountdown &countdown() { return countdown_; }

 private:
  SPANALLOC_SAMPLE_PATH static void *AllocSlowInner(uint32_t cl);
  SPANALLOC_NOINLINE static void FreeSlowUnsampled(ThreadCache *tc, void *p, uint32_t cl);
  void GrowMaxLength(uint32_t cl);
  static uint64_t Budget();
  void *Refill(uint32_t cl);
  void GrowAfterRefill(uint32_t cl, uint32_t got);
  void *RefillWithRun(uint32_t cl, void *head, void *tail, uint32_t got, const ObjectRun &run);
  void *PopFresh(uint32_t cl);
  void ReturnFresh(uint32_t cl);
  void Overflow(uint32_t cl);
  void ReleaseToCentral(uint32_t cl, uint32_t n);
  void SalvageAfterFork();
  void UnregisterLocked();
  static ThreadCache *CreateForCurrentThread();

  // Sampling mode (thread_cache_sampling.cc; sampler.h says why). When
  // sampling is on, lists[cl] holds only objects already charged to
  // countdown_ and its max_length is 0, so that every free reaches FreeSlow;
  // objects not charged wait in stash_[cl], whose max_length limits
  // lists[cl].length + stash_[cl].length as lists[cl].max_length does
  // otherwise. `pending_*`: samples that fell on a charge of this class
  // (the object after a pre-charged window, or a freed object), not taken
  // yet: the class's next AllocSlow takes them.
  struct Stash {
    void *head;
    uint32_t length;
    uint32_t max_length;
    uint16_t pending_profile;
    uint16_t pending_guard;
  };
  void EnterSamplingMode();
  SPANALLOC_SAMPLE_PATH void *AllocSampling(uint32_t cl);
  void FreeSampling(void *p, uint32_t cl);
  SPANALLOC_COLD void FreeSamplingSlow(void *p, uint32_t cl);
  bool RefillStash(uint32_t cl);
  void OverflowSampling(uint32_t cl);
  void ChargeWindow(uint32_t cl);
  void ChargePending(uint32_t cl);
  void UnchargeList(uint32_t cl);
  void ReleaseStash(uint32_t cl, uint32_t n);
  void FlushSampling();
  void SalvageStashAfterFork();
  void GrowLimit(uint32_t cl, uint32_t &max_length);
  Stash stash_[kNumClasses] = {};
  FreshRun fresh_[kNumClasses] = {};
  SampleCountdown countdown_;

  uint64_t max_bytes_ = 0;  // sum of max_length * size
  // Cached bytes as of each class's last slow path (read by stats): the sum
  // of published_length_[cl] * size, kept by deltas so that a slow path
  // refreshes its own class only (summing every class cost a short-lived
  // thread ~600 instructions per refill). published_length_[cl]:
  // lists[cl].length + stash_[cl].length when class cl last published.
  uint64_t published_bytes_ = 0;
  uint32_t published_length_[kNumClasses] = {};
  // refilled_[cl]: class cl had a refill since its last overflow. In cpu
  // mode only such a list grows when it overflows (thread_cache.cc).
  bool refilled_[kNumClasses] = {};
  // Set while FlushAll runs: its flushes skip the CPU's lists (thread_cache.cc).
  bool flushing_all_ = false;
  ThreadCache *reg_next_ = nullptr;  // registry links, g_registry_lock
  ThreadCache *reg_prev_ = nullptr;
};

// The current thread's cache. Initial-exec TLS, one pointer: keeps the
// static TLS footprint tiny (a dlopen'ed spanalloc still loads). Points at
// g_empty_cache until the thread's first slow path, and again after exit.
extern __thread ThreadCache *tls_cache __attribute__((tls_model("initial-exec")));
// A cache with no objects and no room: every fast path falls to the slow path
// (malloc: its lists are empty; free: their magics are 0). Never written.
extern ThreadCache g_empty_cache;

}  // namespace spanalloc
