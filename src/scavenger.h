// Background release (Go's background scavenger, runtime/mgcscavenge.go):
// one thread that gives the page heap's free memory back to the OS when the
// program is idle, so that freed memory leaves the resident set within a
// bounded time even if no heap operation ever runs again.
//
// Life cycle:
//   kIdle      -- no thread. A process that never holds more than
//                 kStartBytes of free memory beyond the retained bytes stays
//                 here for good (shells, short tools; `unshare --user`
//                 refuses multi-threaded callers).
//   kRequested -- the page heap saw that much free memory (Notify). The
//                 thread is created at the requesting thread's next
//                 lock-free point (StartIfRequested, from the slow paths of
//                 free), never under an allocator lock: pthread_create
//                 allocates.
//   kRunning   -- the thread loops: PageHeap::ReleaseDue releases what is
//                 due (the page-heap lock is dropped around every madvise),
//                 and, at most once per release delay when the heap had
//                 memory due (the program has been idle), the central
//                 lists' transfer slots go back to their spans, so spans of
//                 entirely free objects reach the page heap; then the
//                 thread sleeps on a futex until the next span falls
//                 due, or with no timeout when nothing will (no polling while
//                 idle); Notify wakes it when memory becomes free again.
//   kFailed    -- pthread_create refused; release happens on heap
//                 operations only, as with SPANALLOC_BACKGROUND=0.
// In a fork child the thread does not exist: AfterForkChild returns to
// kIdle (or kRequested, if the child holds enough free memory), and the
// child starts its own thread lazily like any process.
//
// The thread blocks every signal (they stay the program's), is named
// "spanalloc-bg", and never allocates. The fast paths never look at it.
#pragma once

#include <atomic>
#include <cstdint>

#include "common.h"

namespace spanalloc {

class Scavenger {
 public:
  // Free memory beyond the retained bytes that asks for the thread.
  static constexpr uint64_t kStartBytes = uint64_t{16} << 20;
  // Shortest sleep between two rounds of release (paces a heap that keeps
  // freeing while the thread works).
  static constexpr uint64_t kMinSleepMillis = 10;

  // Page heap, after memory became free, with `excess` free committed bytes
  // beyond the retained ones: requests the thread, or wakes it if it sleeps
  // with nothing to do. Takes no lock; a futex wake at most.
  void Notify(uint64_t excess);
  // Creates the thread if it was requested. Only where the caller holds no
  // allocator lock. One relaxed load when there is nothing to do.
  SPANALLOC_INLINE void StartIfRequested() {
    if (SPANALLOC_UNLIKELY(state_.load(std::memory_order_relaxed) == kRequested)) Start();
  }
  // In the child of fork(), from the allocator's atfork handler.
  void AfterForkChild();
  // Whether the thread exists (tests, report).
  bool Running() const { return state_.load(std::memory_order_relaxed) == kRunning; }

 private:
  enum : uint32_t { kIdle, kRequested, kStarting, kRunning, kFailed };
  SPANALLOC_NOINLINE void Start();
  static void *Main(void *self);
  [[noreturn]] void Loop();

  std::atomic<uint32_t> state_{kIdle};
  std::atomic<uint32_t> seq_{0};       // futex word: bumped to wake the thread
  std::atomic<uint32_t> sleeping_{0};  // 1 while the thread may sleep with no timeout
  uint64_t last_slots_release_ = 0;    // the thread's own: when it last emptied the transfer slots
};

extern Scavenger g_scavenger;

// True on the background release thread itself.
bool OnScavengerThread();

}  // namespace spanalloc
