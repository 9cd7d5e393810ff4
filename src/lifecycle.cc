// Start-up, thread exit and fork (lifecycle.h): the top of the layer stack.
#include "lifecycle.h"

#include <pthread.h>

#include <atomic>
#include <cerrno>

#include "central_list.h"
#include "common.h"
#include "cpu_cache.h"
#include "free_list.h"
#include "lock.h"
#include "options.h"
#include "page_heap.h"
#include "report.h"
#include "sampler.h"
#include "scavenger.h"
#include "thread_cache.h"

namespace spanalloc {

namespace {

// 0 = not started, 1 = in progress (by the thread holding g_init_lock), 2 = done.
constinit std::atomic<int> g_init_state{0};
constinit Mutex g_init_lock{LockRank::kInit};
pthread_key_t g_thread_key;
bool g_thread_key_ok = false;

void ThreadExit(void *) { ThreadCache::DestroyCurrent(); }

// fork(): take every lock from kRegistry up in rank order (lock.h) so the
// child inherits the heap in a consistent state, then release them (parent)
// or reset them and repair what the vanished threads left (child).
SPANALLOC_RARE void ForkPrepare() {
#ifndef NDEBUG
  LockRankForkBegin();
#endif
  ThreadCache::LockRegistry();                                                    // kRegistry
  for (uint32_t cl = 1; cl < kNumClasses; cl++) g_central[cl].lock().Lock();      // kCentral
  g_page_heap.lock().Lock();                                                      // kPageHeap
  SamplerForkPrepare();                                                           // kSampler, kMetadata
  g_page_heap.span_alloc().lock().Lock();                                         // kMetadata
  ThreadCache::CacheAllocLock().Lock();                                           // kMetadata
#ifndef NDEBUG
  LockRankForkEnd();
#endif
}
SPANALLOC_RARE void ForkParent() {
  ThreadCache::CacheAllocLock().Unlock();
  g_page_heap.span_alloc().lock().Unlock();
  SamplerForkParent();
  g_page_heap.lock().Unlock();
  for (uint32_t cl = kNumClasses - 1; cl >= 1; cl--) g_central[cl].lock().Unlock();
  ThreadCache::UnlockRegistry();
}
SPANALLOC_RARE void ForkChild() {
  ThreadCache::CacheAllocLock().ResetAfterFork();
  g_page_heap.span_alloc().lock().ResetAfterFork();
  SamplerForkChild();
  g_page_heap.lock().ResetAfterFork();
  for (uint32_t cl = 1; cl < kNumClasses; cl++) g_central[cl].lock().ResetAfterFork();
  ThreadCache::AfterForkChild();  // resets the registry lock, then repairs
  // Per-CPU caches need nothing: each list is whole after every commit
  // (cpu_cache.h), and no lock guards them.
  g_page_heap.AfterForkChild();
  g_scavenger.AfterForkChild();
}

void InitOnce() {
  InitLinkSecret();
  LoadOptions();
  SamplerConfigure();  // before any thread cache exists
  CpuCache::Init();    // after the sampler: sampling keeps thread caches
  // The heap works from here on: what follows may allocate (glibc's
  // pthread_atfork can), and those calls must find it ready.
  g_init_state.store(2, std::memory_order_release);
  g_thread_key_ok = pthread_key_create(&g_thread_key, ThreadExit) == 0;
  pthread_atfork(ForkPrepare, ForkParent, ForkChild);
  InitReport();
  SamplerStart();
}

}  // namespace

void EnsureInitialized() noexcept {
  if (SPANALLOC_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return;
  MutexLock l(g_init_lock);
  if (g_init_state.load(std::memory_order_relaxed) == 0) {
    g_init_state.store(1, std::memory_order_relaxed);
    // Reading options opens files that may not exist: the caller's
    // allocation succeeds, so it must not see their errno.
    int saved = errno;
    InitOnce();
    errno = saved;
  }
}

void RegisterThreadExit(ThreadCache *tc) {
  if (g_thread_key_ok) pthread_setspecific(g_thread_key, tc);
}

}  // namespace spanalloc
