// See scavenger.h for the life cycle of the background release thread.
#include "scavenger.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "central_list.h"
#include "cpu_cache.h"
#include "options.h"
#include "page_heap.h"

namespace spanalloc {

constinit Scavenger g_scavenger;

namespace {
__thread bool tls_on_scavenger __attribute__((tls_model("initial-exec"))) = false;

// Sleeps while *word == value, at most timeout_ms (kNever: no timeout).
void FutexWait(std::atomic<uint32_t> *word, uint32_t value, uint64_t timeout_ms) {
  struct timespec ts;
  struct timespec *tsp = nullptr;
  if (timeout_ms != PageHeap::kNever) {
    ts.tv_sec = time_t(timeout_ms / 1000);
    ts.tv_nsec = long(timeout_ms % 1000) * 1000000;
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, value, tsp, nullptr, 0);
}
void FutexWake(std::atomic<uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}
}  // namespace

bool OnScavengerThread() { return tls_on_scavenger; }

void Scavenger::Notify(uint64_t excess) {
  uint32_t state = state_.load(std::memory_order_relaxed);
  if (state == kRunning) {
    // Pairs with Loop: either the thread announced its sleep before we
    // looked (we wake it), or its next ReleaseDue, which takes the page-heap
    // lock after the announcement, sees the memory we freed under that lock.
    if (sleeping_.load(std::memory_order_seq_cst) != 0) {
      sleeping_.store(0, std::memory_order_relaxed);
      int saved = errno;
      seq_.fetch_add(1, std::memory_order_release);
      FutexWake(&seq_);
      errno = saved;
    }
    return;
  }
  if (state == kIdle && excess > kStartBytes && g_options.background) {
    uint32_t expected = kIdle;
    state_.compare_exchange_strong(expected, kRequested, std::memory_order_relaxed);
  }
}

void Scavenger::Start() {
  uint32_t expected = kRequested;
  if (!state_.compare_exchange_strong(expected, kStarting, std::memory_order_acq_rel)) return;
  int saved = errno;
  // The thread inherits a full signal mask: signals stay the program's.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc == 0) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    rc = pthread_create(&thread, &attr, Main, this);
    pthread_attr_destroy(&attr);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  state_.store(rc == 0 ? kRunning : kFailed, std::memory_order_release);
}

void *Scavenger::Main(void *self) {
  tls_on_scavenger = true;
  pthread_setname_np(pthread_self(), "spanalloc-bg");
  static_cast<Scavenger *>(self)->Loop();
}

void Scavenger::Loop() {
  for (;;) {
    uint32_t seq = seq_.load(std::memory_order_acquire);
    sleeping_.store(1, std::memory_order_seq_cst);  // announced before looking at the heap
    size_t released;
    uint64_t due = g_page_heap.ReleaseDue(&released);
    uint64_t now = NowMillis();
    if (released > 0 && now - last_slots_release_ >= g_options.release_delay_ms) {
      // Memory sat unused for the release delay: the program is idle, and
      // objects parked in transfer slots pin whole spans. (Freed spans
      // notify us: the wait below then returns at once and the next round
      // schedules their release.)
      last_slots_release_ = now;
      // CPUs that have been idle as long give back their caches first, so
      // that what they held can reach the spans too.
      CpuCache::Drain(g_options.release_delay_ms);
      for (uint32_t cl = 1; cl < kNumClasses; cl++) g_central[cl].ReleaseSlots();
    }
    if (due == PageHeap::kNever) {
      FutexWait(&seq_, seq, PageHeap::kNever);
    } else {
      sleeping_.store(0, std::memory_order_relaxed);
      uint64_t wait = due > now ? due - now : 0;
      FutexWait(&seq_, seq, wait < kMinSleepMillis ? kMinSleepMillis : wait);
    }
    sleeping_.store(0, std::memory_order_relaxed);
  }
}

SPANALLOC_RARE void Scavenger::AfterForkChild() {
  seq_.store(0, std::memory_order_relaxed);
  sleeping_.store(0, std::memory_order_relaxed);
  state_.store(kIdle, std::memory_order_relaxed);
  uint64_t free_now = g_page_heap.FreeCommittedBytes(), retain = RetainBytes();
  if (free_now > retain) Notify(free_now - retain);
}

}  // namespace spanalloc
