#include "thread_cache.h"

#include <pthread.h>

#include <algorithm>

#include "central_list.h"
#include "cpu_cache.h"
#include "free_list.h"
#include "lifecycle.h"
#include "metadata_alloc.h"
#include "options.h"
#include "scavenger.h"

namespace spanalloc {

__thread ThreadCache *tls_cache __attribute__((tls_model("initial-exec"))) = &g_empty_cache;
constinit ThreadCache g_empty_cache{ThreadCache::EmptyTag{}};

namespace {
// Thread state beside the cache pointer: 0 no cache yet, 1 has a cache,
// 2 exiting (its cache is gone; allocate straight from the central lists).
__thread uint8_t tls_state __attribute__((tls_model("initial-exec"))) = 0;

constinit Mutex g_registry_lock{LockRank::kRegistry};
ThreadCache *g_registry = nullptr;  // g_registry_lock
uint64_t g_registry_count = 0;      // g_registry_lock
constinit FixedAlloc<ThreadCache> g_cache_alloc;

// The link of free object slot, reported unless plausible (free_list.h).
inline void *PlausibleLinkOf(void *slot, uint32_t cl) {
  void *next = LinkOf(slot);
  if (SPANALLOC_UNLIKELY(!LinkIsPlausible(next))) FatalCorruptLink(slot, cl, "free");
  return next;
}

// Every object handed out has its first word cleared, so that it never reads
// as a free-list link (free_list.h: how free() finds double frees).
inline void *HandOut(void *p) {
  *static_cast<LinkWord *>(p) = 0;
  return p;
}

// False sharing of tiny objects (classes below a cache line):
//  - active: two threads' own objects on one line. A thread's first refill
//    of a tiny class takes whole lines (kSpreadLines of them), so no two
//    threads start on the same line.
//  - passive: a thread allocates objects back to back and hands them to
//    other threads, which free them into their own caches and then reuse
//    them, all on one line. A refill that came from the spans (objects in
//    address order) is therefore linked a line apart (SpreadOverLines):
//    consecutive allocations land on kSpreadLines different lines, and so
//    do objects handed out to up to kSpreadLines threads. The thread's own
//    objects still fill the same lines, only in another order.
constexpr uint32_t kCacheLine = 64;
constexpr uint32_t kSpreadLines = 4;

// Objects of class cl per cache line, rounded up (0 for classes of a line or more).
constexpr uint32_t PerLine(uint32_t cl) {
  uint32_t size = kClassShape[cl].size;
  return size >= kCacheLine ? 0 : (kCacheLine + size - 1) / size;
}

// First max_length of each class's list (slow start; tiny classes: whole lines).
constexpr std::array<uint32_t, kNumClasses> kInitialLength = [] {
  std::array<uint32_t, kNumClasses> t{};
  for (uint32_t cl = 1; cl < kNumClasses; cl++)
    t[cl] = std::max(ThreadCache::kInitialMaxLength,
                     std::min(kClassShape[cl].batch, kSpreadLines * kCacheLine / kClassShape[cl].size));
  return t;
}();

constexpr uint32_t kMaxBatch = [] {
  uint32_t m = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) m = std::max(m, kClassShape[cl].batch);
  return m;
}();

// Relinks the n objects from head (n <= batch, links written by the central
// list just now) so that consecutive ones are PerLine(cl) objects apart:
// with head's objects in address order, a cache line or more. Returns the
// new head and sets *tail to the new tail, whose link is null.
void *SpreadOverLines(void *head, uint32_t n, uint32_t cl, void **tail) {
  const uint32_t step = PerLine(cl);
  if (n <= step) return head;  // one line: nothing to spread over
  void *obj[kMaxBatch];
  for (uint32_t i = 0; i < n; i++, head = LinkOf(obj[i - 1])) obj[i] = head;
  void *first = nullptr;
  void *last = nullptr;
  for (uint32_t j = 0; j < step; j++) {
    for (uint32_t i = j; i < n; i += step) {
      if (last != nullptr) {
        SetLink(last, obj[i]);
      } else {
        first = obj[i];
      }
      last = obj[i];
    }
  }
  SetLink(last, nullptr);
  *tail = last;
  return first;
}


// One object straight from / to the central list, for threads without a cache.
void *CentralAllocOne(uint32_t cl) {
  void *head, *tail;
  return g_central[cl].RemoveRange(&head, &tail, 1) == 1 ? HandOut(head) : nullptr;
}
}  // namespace

ThreadCache *ThreadCache::CreateForCurrentThread() {
  ThreadCache *tc = g_cache_alloc.New();
  if (tc == nullptr) return nullptr;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    uint32_t initial = kInitialLength[cl];
    tc->lists[cl].set_max_length(initial);
    tc->max_bytes_ += uint64_t(initial) * kClassShape[cl].size;
  }
  {
    MutexLock l(g_registry_lock);
    tc->reg_next_ = g_registry;
    if (g_registry) g_registry->reg_prev_ = tc;
    g_registry = tc;
    g_registry_count++;
  }
  if (g_sampler.on) tc->EnterSamplingMode();
  tls_cache = tc;
  tls_state = 1;
  RegisterThreadExit(tc);  // lifecycle.cc: runs DestroyCurrent at thread exit
  return tc;
}

void *ThreadCache::AllocSlow(uint32_t cl) noexcept {
  void *p = AllocSlowInner(cl);
  return p != nullptr ? p : FailNoMemory();
}

void *ThreadCache::AllocSlowInner(uint32_t cl) {
  ThreadCache *tc = tls_cache;
  if (tc == &g_empty_cache) {
    EnsureInitialized();
    if (tls_state == 2 || (tc = CreateForCurrentThread()) == nullptr)
      return CpuCache::On() ? CpuCache::Alloc(cl) : CentralAllocOne(cl);
  }
  if (SPANALLOC_UNLIKELY(g_sampler.on)) return tc->AllocSampling(cl);
  FreeList &l = tc->lists[cl];
  if (l.head != ListEnd()) {  // the cache was just created, or a race with init
    void *p = l.head;
    l.head = CheckedListLinkOf(p, cl, "malloc");
    l.room++;
    return HandOut(p);
  }
  if (!tc->fresh_[cl].empty()) {
    void *p = tc->PopFresh(cl);
    tc->PublishClass(cl);
    return p;
  }
  return tc->Refill(cl);
}

void *ThreadCache::AllocSlowList(FreeList *l) noexcept { return AllocSlow(uint32_t(l - tls_cache->lists)); }
void ThreadCache::FreeSlowList(void *p, FreeList *l) noexcept {
  l->room++;  // the fast path's decrement
  FreeSlow(p, uint32_t(l - tls_cache->lists));
}

void *ThreadCache::PopImplausible(void *p, FreeList *l) noexcept {
  if (p == ListEnd()) return AllocSlowList(l);
  FatalCorruptLink(p, uint32_t(l - tls_cache->lists), "malloc");
}

// With sampling on, every free of a thread with a cache comes here: it goes
// on at once, without the frame FreeSlowUnsampled needs.
void ThreadCache::FreeSlow(void *p, uint32_t cl) noexcept {
  ThreadCache *tc = tls_cache;
  if (SPANALLOC_UNLIKELY(g_sampler.on) && tc != &g_empty_cache) return tc->FreeSampling(p, cl);
  return FreeSlowUnsampled(tc, p, cl);
}

void ThreadCache::FreeSlowUnsampled(ThreadCache *tc, void *p, uint32_t cl) {
  if (tc == &g_empty_cache) {
    if (tls_state == 2 || (tc = CreateForCurrentThread()) == nullptr) {
      if (CpuCache::On()) return CpuCache::Free(p, cl);
      SetLink(p, nullptr);
      g_central[cl].InsertRange(p, p, 1);
      return;
    }
  }
  if (SPANALLOC_UNLIKELY(g_sampler.on)) return tc->FreeSampling(p, cl);
  FreeList &l = tc->lists[cl];
  if (l.room <= 0) tc->Overflow(cl);
  SetLink(p, l.head);
  l.head = p;
  l.room--;
  g_scavenger.StartIfRequested();  // no lock held here (scavenger.h)
}

// The byte budget of one cache: SPANALLOC_THREAD_CACHE_KB; in cpu mode the
// live caches share that much per CPU (gperftools' way of bounding the
// total), at least kMinCpuModeBudget each. The count is read without the
// registry lock: a cache created meanwhile only makes the next growth
// decision stale.
uint64_t ThreadCache::Budget() {
  if (!CpuCache::On()) return g_options.thread_cache_bytes;
  uint64_t live = __atomic_load_n(&g_registry_count, __ATOMIC_RELAXED);
  uint64_t cpus = CpuCache::NumCpus();
  uint64_t share = live > cpus ? g_options.thread_cache_bytes * cpus / live : g_options.thread_cache_bytes;
  return share > kMinCpuModeBudget ? share : kMinCpuModeBudget;
}

// Slow start (as TCP's): a class's max_length starts at kInitialMaxLength
// and doubles on each miss up to one batch, so a short-lived thread takes a
// few objects per class instead of whole batches; past one batch it grows
// by a batch per miss while the thread's byte budget allows.
void ThreadCache::GrowMaxLength(uint32_t cl) {
  uint32_t m = lists[cl].max_length;
  GrowLimit(cl, m);
  lists[cl].set_max_length(m);
}

void ThreadCache::GrowLimit(uint32_t cl, uint32_t &max_length) {
  const ClassShape &shape = kClassShape[cl];
  uint32_t grow = max_length < shape.batch ? std::min(max_length, shape.batch - max_length) : shape.batch;
  uint64_t bytes = uint64_t(grow) * shape.size;
  // In cpu mode the budget binds below one batch too: refills from the
  // CPU's cache take no lock, so short lists cost little (cpu_cache.h).
  bool capped = max_length >= shape.batch || CpuCache::On();
  if (capped && (max_length >= kMaxLength || max_bytes_ + bytes > Budget())) return;
  max_length += grow;
  max_bytes_ += bytes;
}

// Slow start, after a refill of `got` objects of class cl.
SPANALLOC_INLINE void ThreadCache::GrowAfterRefill(uint32_t cl, uint32_t got) {
  FreeList &l = lists[cl];
  GrowMaxLength(cl);
  refilled_[cl] = true;
  if (got > l.max_length) {
    max_bytes_ += uint64_t(got - l.max_length) * kClassShape[cl].size;
    l.set_max_length(got);
  }
}

void *ThreadCache::Refill(uint32_t cl) {
  FreeList &l = lists[cl];
  const ClassShape &shape = kClassShape[cl];
  void *head, *tail;
  // A whole batch may come back even when fewer are asked for (a transfer
  // slot is taken whole); the list then simply holds more.
  int want = int(std::min(l.max_length, shape.batch));
  // In cpu mode the CPU's list first (objects freed on this CPU: no lock).
  int got = CpuCache::On() ? CpuCache::RemoveRange(cl, &head, &tail, uint32_t(want)) : 0;
  bool from_cpu = got != 0;
  // From the central list, the start of an all-free span may come as a run
  // (fresh objects, linked only as they are needed: RefillWithRun).
  ObjectRun run;
  if (got == 0) got = g_central[cl].RemoveRange(&head, &tail, want, &run);
  if (got == 0) return nullptr;
  if (SPANALLOC_UNLIKELY(run.count != 0)) return RefillWithRun(cl, head, tail, uint32_t(got), run);
  // Fewer than a batch: from the spans, in address order (a whole batch may
  // be a transfer slot's, in any order: left as it is, O(1); so is a chain
  // from the CPU's list, objects already spread by earlier refills).
  if (!from_cpu && uint32_t(got) < shape.batch && PerLine(cl) != 0) head = SpreadOverLines(head, uint32_t(got), cl, &tail);
  GrowAfterRefill(cl, uint32_t(got));
  SetLink(tail, ListEnd());  // was null: the end of a central batch
  void *p = head;
  l.head = CheckedListLinkOf(head, cl, "malloc");
  l.set_length(uint32_t(got - 1));
  PublishClass(cl);
  return HandOut(p);
}

// Refill's end when `run` is part of the `got` objects: the linked ones
// (from the spans, in address order: spread as Refill spreads them) first,
// then the run as the list's fresh objects. Out of line, so that Refill
// costs no more without one.
SPANALLOC_NOINLINE void *ThreadCache::RefillWithRun(uint32_t cl, void *head, void *tail, uint32_t got,
                                                    const ObjectRun &run) {
  FreeList &l = lists[cl];
  const uint32_t linked = got - run.count;
  if (linked != 0 && PerLine(cl) != 0) head = SpreadOverLines(head, linked, cl, &tail);
  GrowAfterRefill(cl, got);
  fresh_[cl].set(run.start, run.count);
  void *p;
  if (linked == 0) {
    l.set_length(got);
    p = PopFresh(cl);
  } else {
    SetLink(tail, ListEnd());  // was null: the end of a central batch
    l.head = CheckedListLinkOf(head, cl, "malloc");
    l.set_length(got - 1);
    p = HandOut(head);
  }
  PublishClass(cl);
  return p;
}

// The list is empty and fresh objects wait (thread_cache.h): links the ones
// whose first word is on the OS page of the next one (at least that one) and
// pops it; the rest stay fresh (linking writes an object's first word, and
// a page once written costs its RSS whatever else on it is written). Tiny classes are linked a line apart, as
// SpreadOverLines does.
void *ThreadCache::PopFresh(uint32_t cl) {
  FreeList &l = lists[cl];
  const uint32_t size = kClassShape[cl].size;
  char *start = fresh_[cl].start();
  const uint32_t count = fresh_[cl].count();
  uintptr_t page_end = (reinterpret_cast<uintptr_t>(start) | (kOsPage - 1)) + 1;
  uint32_t k = uint32_t((page_end - reinterpret_cast<uintptr_t>(start) + size - 1) / size);
  if (k > count) k = count;
  // Off the run before they are linked: a fork child that finds this thread
  // stopped in between loses them rather than hands them out twice.
  fresh_[cl].set(start + size_t(k) * size, count - k);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  const uint32_t step = PerLine(cl) != 0 && k > PerLine(cl) ? PerLine(cl) : 1;
  void *head = ListEnd();
  char *last = nullptr;
  for (uint32_t j = 0; j < step; j++) {
    for (uint32_t i = j == 0 ? step : j; i < k; i += step) {  // object 0 is handed out
      char *obj = start + size_t(i) * size;
      if (last != nullptr) {
        SetLink(last, obj);
      } else {
        head = obj;
      }
      last = obj;
    }
  }
  if (last != nullptr) SetLink(last, ListEnd());
  l.head = head;
  l.room++;
  return HandOut(start);
}

// Gives the fresh objects back to the central list as they are (unwritten).
void ThreadCache::ReturnFresh(uint32_t cl) {
  FreeList &l = lists[cl];
  ObjectRun run{fresh_[cl].start(), fresh_[cl].count()};
  fresh_[cl].clear();
  l.room += int32_t(run.count);
  g_central[cl].InsertRun(run);
}

// Gives back up to n objects: the fresh ones alone if there are any (room
// made without touching memory; the linked objects, freed last, are the ones
// the thread will want first), else n linked ones from the list's head.
void ThreadCache::ReleaseToCentral(uint32_t cl, uint32_t n) {
  FreeList &l = lists[cl];
  if (!fresh_[cl].empty()) return ReturnFresh(cl);
  if (n > l.length()) n = l.length();
  if (n == 0) return;
  void *head = l.head;
  void *last = head;
  // Links are checked for plausibility here (as malloc does) and in full
  // where the central list returns objects to their spans.
  for (uint32_t i = 1; i < n; i++) last = PlausibleLinkOf(last, cl);
  l.head = PlausibleLinkOf(last, cl);
  l.room += int32_t(n);
  SetLink(last, nullptr);
  if (CpuCache::On() && !flushing_all_) return CpuCache::InsertRange(cl, head, last, n);
  g_central[cl].InsertRange(head, last, int(n));
}

// The list is full. Below one batch, a thread that frees more than it
// allocates (a consumer) earns a longer list first, so that what it flushes
// are whole batches, which the central list takes in O(1). In cpu mode the
// flush goes to the CPU's list (no lock, any length; the CPU list hands the
// central list whole batches), so only a list that also refilled since its
// last overflow grows: a thread that only frees a class (a consumer of
// short-lived threads' objects) keeps it at its first length instead of
// holding up to a batch of every class it frees.
void ThreadCache::Overflow(uint32_t cl) {
  FreeList &l = lists[cl];
  bool grow = !CpuCache::On() || refilled_[cl];
  refilled_[cl] = false;
  if (grow && l.max_length < kClassShape[cl].batch) {
    GrowMaxLength(cl);
    if (l.room > 0) return;
  }
  ReleaseToCentral(cl, kClassShape[cl].batch);
  PublishClass(cl);
}

// Straight to the central lists, in cpu mode too: what an exiting thread
// held would otherwise sit in one CPU's lists, out of reach of the threads
// that run on the others (bench/threads' peak RSS at 1 thread 4.8 -> 4.4 MiB,
// 2 threads 5.0 -> 4.5, CPU time unchanged); malloc_trim drains the CPUs
// next anyway.
void ThreadCache::FlushAll() {
  flushing_all_ = true;
  if (g_sampler.on) FlushSampling();
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    uint32_t batch = kClassShape[cl].batch;
    while (lists[cl].length() > 0) ReleaseToCentral(cl, batch);
  }
  flushing_all_ = false;
  PublishBytes();
}

void ThreadCache::PublishBytes() {
  uint64_t bytes = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    published_length_[cl] = lists[cl].length() + stash_[cl].length;
    bytes += uint64_t(published_length_[cl]) * kClassShape[cl].size;
  }
  __atomic_store_n(&published_bytes_, bytes, __ATOMIC_RELAXED);
}

void ThreadCache::PublishClass(uint32_t cl) {
  uint32_t now = lists[cl].length() + stash_[cl].length;
  uint64_t size = kClassShape[cl].size;
  // Unsigned wrap-around makes a shrinking class subtract.
  uint64_t bytes = published_bytes_ + uint64_t(now) * size - uint64_t(published_length_[cl]) * size;
  published_length_[cl] = now;
  __atomic_store_n(&published_bytes_, bytes, __ATOMIC_RELAXED);
}

void ThreadCache::DestroyCurrent() {
  ThreadCache *tc = tls_cache;
  tls_state = 2;
  if (tc == &g_empty_cache) return;
  tls_cache = &g_empty_cache;
  tc->FlushAll();
  if (CpuCache::On()) CpuCache::ThreadExiting();
  {
    MutexLock l(g_registry_lock);
    tc->UnregisterLocked();
  }
  g_cache_alloc.Delete(tc);
}

// Takes this cache off the registry. g_registry_lock held (or, in a fork
// child, no other thread left).
void ThreadCache::UnregisterLocked() {
  if (reg_prev_) reg_prev_->reg_next_ = reg_next_; else g_registry = reg_next_;
  if (reg_next_) reg_next_->reg_prev_ = reg_prev_;
  g_registry_count--;
}

void ThreadCache::LockRegistry() { g_registry_lock.Lock(); }
void ThreadCache::UnlockRegistry() { g_registry_lock.Unlock(); }
Mutex &ThreadCache::CacheAllocLock() { return g_cache_alloc.lock(); }

// In the child of fork() only the forking thread lives on. The other
// threads' caches are intact copies: give their objects back to the central
// lists and drop the caches, so nothing leaks.
void ThreadCache::AfterForkChild() {
  g_registry_lock.ResetAfterFork();  // CacheAllocLock() was reset before
  ThreadCache *self = tls_cache;
  ThreadCache *tc = g_registry;
  while (tc != nullptr) {
    ThreadCache *next = tc->reg_next_;
    if (tc != self) {
      tc->SalvageAfterFork();
      tc->FlushAll();
      tc->UnregisterLocked();
      g_cache_alloc.Delete(tc);
    }
    tc = next;
  }
}

// A cache whose thread did not survive fork() may have been stopped halfway
// through a push or a pop: its lists are cut at the first link that does not
// hold or at `length` objects, whichever comes first. What is cut off (at most
// the object in flight) is lost to the child, never handed out twice.
void ThreadCache::SalvageAfterFork() {
  if (g_sampler.on) SalvageStashAfterFork();
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    FreeList &l = lists[cl];
    // The fresh run, unless stopped halfway through its update (then lost);
    // the linked objects are length - fresh at most.
    FreshRun &run = fresh_[cl];
    uint32_t fresh = run.count();
    if (fresh != 0) {
      char *last = run.start() + size_t(fresh - 1) * kClassShape[cl].size;
      if (!LinkIsValid(run.start(), cl) || SpanOf(run.start()) != SpanOf(last)) {
        run.clear();
        fresh = 0;
      }
    }
    uint32_t length = l.length();
    l.set_length(CutAtFirstBadLink(&l.head, length > fresh ? length - fresh : 0, cl, ListEnd()) + fresh);
  }
}

void ThreadCache::RegistryStats(uint64_t *caches, uint64_t *bytes) {
  MutexLock l(g_registry_lock);
  *caches = g_registry_count;
  uint64_t sum = 0;
  for (ThreadCache *tc = g_registry; tc; tc = tc->reg_next_) sum += __atomic_load_n(&tc->published_bytes_, __ATOMIC_RELAXED);
  *bytes = sum;
}

}  // namespace spanalloc
