// Per-CPU caches (cpu_cache.h) through the spanalloc_* API: reuse, the
// per-CPU bound, threads moved between CPUs while they allocate, more
// threads than CPUs, draining, fork, and the checks of the hardened lists.
//
// The process asks for cpu mode before the allocator starts. Where the
// kernel or glibc gives no rseq area (or in a TSan build) the mode falls
// back to thread caches: the tests that need per-CPU caches then say why
// and skip, and CpuCacheMode checks the fallback. CTest also runs
// CpuCacheMode with GLIBC_TUNABLES=glibc.pthread.rseq=0 (CPU_CACHE_EXPECT=
// thread), where the fallback must happen.
#include "cpu_cache.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "allocator.h"
#include "central_list.h"
#include "options.h"
#include "size_classes.h"
#include "spanalloc.h"
#include "thread_cache.h"

namespace spanalloc {
namespace {

// Before the allocator starts (its first allocation is in a test body).
const int kAskForCpuMode = [] {
  if (getenv("SPANALLOC_CACHE") == nullptr) setenv("SPANALLOC_CACHE", "cpu", 1);
  return 0;
}();

bool Started() {
  spanalloc_free(spanalloc_malloc(16));
  return true;
}

#define REQUIRE_CPU_MODE()                                                                         \
  do {                                                                                             \
    ASSERT_TRUE(Started());                                                                        \
    if (!CpuCache::On())                                                                           \
      GTEST_SKIP() << "no per-CPU caches here: "                                                   \
                   << (CpuCache::FallbackReason() ? CpuCache::FallbackReason() : "thread mode asked for"); \
  } while (0)

// Moves the calling thread onto cpu; false when it may not run there.
bool PinTo(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return sched_setaffinity(0, sizeof s, &s) == 0;
}
// CPUs this process may run on, the first two of them.
std::vector<int> UsableCpus() {
  cpu_set_t s;
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof s, &s) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE && out.size() < 2; c++)
    if (CPU_ISSET(c, &s)) out.push_back(c);
  return out;
}
struct RestoreAffinity {
  cpu_set_t old;
  RestoreAffinity() { sched_getaffinity(0, sizeof old, &old); }
  ~RestoreAffinity() { sched_setaffinity(0, sizeof old, &old); }
};

TEST(CpuCacheMode, FollowsTheEnvironment) {
  ASSERT_TRUE(Started());
  const char *expect = getenv("CPU_CACHE_EXPECT");
  if (expect != nullptr && strcmp(expect, "thread") == 0) {
    // GLIBC_TUNABLES=glibc.pthread.rseq=0: glibc registers no rseq area.
    EXPECT_FALSE(CpuCache::On());
    EXPECT_EQ(g_options.cache_mode, CacheMode::kThread) << "the report shows the mode in force";
    ASSERT_NE(CpuCache::FallbackReason(), nullptr);
    EXPECT_NE(strstr(CpuCache::FallbackReason(), "rseq"), nullptr) << CpuCache::FallbackReason();
    EXPECT_NE(tls_cache, &g_empty_cache) << "thread caches took over";
    return;
  }
  if (!CpuCache::On()) {
    ASSERT_NE(CpuCache::FallbackReason(), nullptr);
    GTEST_SKIP() << "cpu mode fell back: " << CpuCache::FallbackReason();
  }
  EXPECT_EQ(g_options.cache_mode, CacheMode::kCpu);
  EXPECT_NE(tls_cache, &g_empty_cache) << "a small thread cache stays in front";
  EXPECT_GE(CpuCache::NumCpus(), 1u);
  int cpu = CpuCache::CurrentCpu();
  EXPECT_GE(cpu, 0);
  EXPECT_LT(uint32_t(cpu), CpuCache::NumCpus());
}

// What a thread frees beyond its cache's lists goes to its CPU's lists;
// the next thread on that CPU refills from them.
TEST(CpuCache, AThreadRefillsWhatAnotherFlushedOnTheSameCpu) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  ASSERT_FALSE(cpus.empty());
  std::vector<void *> given;
  for (int i = 0; i < 64; i++) given.push_back(spanalloc_malloc(40));
  std::set<void *> flushed(given.begin(), given.end());
  CpuCache::Drain(0);
  std::thread a([&] {
    ASSERT_TRUE(PinTo(cpus[0]));
    for (void *p : given) spanalloc_free(p);  // a consumer: its lists overflow
  });
  a.join();
  EXPECT_GT(CpuCache::CachedBytesOn(uint32_t(cpus[0])), 0u) << "the thread's overflows went to its CPU";
  int reused = 0;
  std::thread b([&] {
    ASSERT_TRUE(PinTo(cpus[0]));
    std::vector<void *> objs;
    for (int i = 0; i < 64; i++) objs.push_back(spanalloc_malloc(40));
    for (void *p : objs) reused += flushed.count(p) != 0;
    for (void *p : objs) spanalloc_free(p);
  });
  b.join();
  EXPECT_GT(reused, 0) << "no object came back from the CPU's list";
}

// A flush into a full CPU list: a whole batch goes into a free transfer
// slot of the central list as it is, the CPU list untouched; with every slot
// taken, the list's newest batch makes room and the chain goes on the list.
TEST(CpuCache, AFullListPassesWholeBatchesToAFreeSlot) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  ASSERT_FALSE(cpus.empty());
  const uint32_t cl = SizeClassOf(200);
  const uint32_t batch = kClassShape[cl].batch;
  const uint32_t limit = CpuCache::MaxLength(cl);
  ASSERT_GE(limit, batch) << "the default budget gives this class a batch";
  CentralList &c = g_central[cl];
  std::thread t([&] {
    RestoreAffinity keep;
    ASSERT_TRUE(PinTo(cpus[0]));
    CpuCache::Drain(0);
    c.ReleaseSlots();
    auto one = [&] {
      void *h, *tl;
      EXPECT_EQ(c.RemoveRange(&h, &tl, 1), 1);
      return h;
    };
    auto chain = [&](uint32_t n, void **tail) {  // n objects linked, the last link null
      void *head = nullptr;
      for (uint32_t i = 0; i < n; i++) {
        void *p = one();
        SetLink(p, head);
        if (head == nullptr) *tail = p;
        head = p;
      }
      return head;
    };
    // Fill the CPU's list one object at a time.
    for (uint32_t i = 0; i < limit; i++) {
      void *p = one();
      SetLink(p, nullptr);
      CpuCache::InsertRange(cl, p, p, 1);
    }
    ASSERT_EQ(CpuCache::CurrentCpu(), cpus[0]);
    uint64_t cached = CpuCache::CachedBytesOn(uint32_t(cpus[0]));
    uint64_t slots = c.Stats().slot_objects;
    void *tail = nullptr;
    void *head = chain(batch, &tail);
    CpuCache::InsertRange(cl, head, tail, batch);
    EXPECT_EQ(c.Stats().slot_objects, slots + batch) << "the whole batch went into a slot";
    EXPECT_EQ(CpuCache::CachedBytesOn(uint32_t(cpus[0])), cached) << "the full CPU list is left as it is";
    EXPECT_FALSE(CpuCache::OnCurrentCpuList(head, cl));
    // Every slot taken: the chain goes on the CPU's list.
    std::vector<std::pair<void *, void *>> parked;
    for (;;) {
      void *pt = nullptr;
      void *ph = chain(batch, &pt);
      if (!c.TryInsertBatch(ph, pt)) {
        c.InsertRange(ph, pt, int(batch));
        break;
      }
      parked.emplace_back(ph, pt);
      ASSERT_LE(parked.size(), size_t(CentralList::kMaxSlots));
    }
    slots = c.Stats().slot_objects;
    head = chain(batch, &tail);
    CpuCache::InsertRange(cl, head, tail, batch);
    EXPECT_EQ(c.Stats().slot_objects, slots) << "no slot was free";
    EXPECT_TRUE(CpuCache::OnCurrentCpuList(head, cl)) << "the chain took the room of the list's newest batch";
    EXPECT_EQ(CpuCache::CachedBytesOn(uint32_t(cpus[0])), cached);
    CpuCache::Drain(0);
    c.ReleaseSlots();
    EXPECT_EQ(c.Validate(), nullptr);
  });
  t.join();
}

// An exiting thread's cache goes to the central lists, within reach of
// every CPU, not into its own CPU's lists.
TEST(CpuCache, AnExitingThreadsCacheGoesToTheCentralLists) {
  REQUIRE_CPU_MODE();
  int cpu = UsableCpus()[0];
  CpuCache::Drain(0);
  uint64_t held = 0;
  std::thread a([&] {
    ASSERT_TRUE(PinTo(cpu));
    std::vector<void *> objs;
    for (int i = 0; i < 64; i++) objs.push_back(spanalloc_malloc(40));
    for (void *p : objs) spanalloc_free(p);  // into its own lists (they grew on the way)
    for (uint32_t cl = 1; cl < kNumClasses; cl++) held += uint64_t(tls_cache->lists[cl].length()) * ClassSize(cl);
  });
  a.join();
  EXPECT_GE(held, 64 * ClassSize(SizeClassOf(40)));
  EXPECT_LT(CpuCache::CachedBytesOn(uint32_t(cpu)), held) << "the exiting thread's cache went to its CPU's lists";
}

TEST(CpuCache, EachCpuStaysWithinItsBudget) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  // Every class's share sums to at most the budget.
  uint64_t shares = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) shares += uint64_t(CpuCache::MaxLength(cl)) * ClassSize(cl);
  EXPECT_LE(shares, g_options.cpu_cache_bytes);
  EXPECT_GE(CpuCache::MaxLength(SizeClassOf(64)), kClassShape[SizeClassOf(64)].batch)
      << "the default budget gives small classes at least a batch";
  // Threads on one CPU flush far more than its budget into it as they exit.
  for (int t = 0; t < 4; t++) {
    std::thread th([&] {
      ASSERT_TRUE(PinTo(cpus[0]));
      std::vector<void *> objs;
      for (size_t n = 16; n <= 32768; n += 64)
        for (int i = 0; i < 8; i++) objs.push_back(spanalloc_malloc(n));
      for (void *p : objs) spanalloc_free(p);
    });
    th.join();
    EXPECT_LE(CpuCache::CachedBytesOn(uint32_t(cpus[0])), g_options.cpu_cache_bytes);
  }
  EXPECT_GT(CpuCache::CachedBytesOn(uint32_t(cpus[0])), 0u);
}

// A thread cache's refill takes what the CPU's list has even when that is
// fewer than it asks for, and a thread that only frees a class (a consumer)
// does not grow its list of it in cpu mode.
TEST(CpuCache, RefillTakesAShortListAndConsumersStaySmall) {
  REQUIRE_CPU_MODE();
  int cpu = UsableCpus()[0];
  constexpr size_t kSize = 200;  // a class whose first thread-cache length is 2
  const uint32_t cl = SizeClassOf(kSize);
  ASSERT_EQ(ThreadCache::kInitialMaxLength, 2u);
  void *objs[5];
  for (void *&p : objs) p = spanalloc_malloc(kSize);
  CpuCache::Drain(0);  // every list empty, a new trim period
  uint32_t consumer_length = 0;
  std::thread a([&] {
    ASSERT_TRUE(PinTo(cpu));
    // The third and fifth frees overflow, each sending two objects to the
    // CPU's list; the last one goes to the central list as the thread exits.
    for (void *p : objs) spanalloc_free(p);
    consumer_length = tls_cache->lists[cl].max_length;
  });
  a.join();
  EXPECT_EQ(consumer_length, ThreadCache::kInitialMaxLength) << "a list that never refilled grew on overflow";
  std::set<void *> reused;
  std::thread b([&] {
    ASSERT_TRUE(PinTo(cpu));
    // Refills ask for 2, then 4: the second finds two objects left.
    void *got[4];
    for (void *&p : got) p = spanalloc_malloc(kSize);
    for (void *p : got) reused.insert(p);
    for (void *p : got) spanalloc_free(p);
  });
  b.join();
  for (int i = 0; i < 4; i++) EXPECT_EQ(reused.count(objs[i]), 1u) << objs[i] << " stayed in the CPU's list";
}

// Threads that come and go on one CPU, each freeing objects of a class of
// its own (which overflow into the CPU's lists): as each exits, what no
// refill took since the previous exit goes back to the central lists, so
// the CPU's lists hold about one thread's objects rather than everything
// the threads ever flushed (bounded only by the budget).
TEST(CpuCache, ExitingThreadsTrimTheirCpu) {
  REQUIRE_CPU_MODE();
  int cpu = UsableCpus()[0];
  constexpr int kThreads = 40, kObjects = 64;
  uint64_t freed = 0, largest = 0;
  CpuCache::Drain(0);
  for (int t = 0; t < kThreads; t++) {
    size_t size = 32 + 24 * size_t(t);
    std::vector<void *> objs;
    for (int i = 0; i < kObjects; i++) objs.push_back(spanalloc_malloc(size));
    std::thread th([&] {
      ASSERT_TRUE(PinTo(cpu));
      for (void *p : objs) spanalloc_free(p);
    });
    th.join();
    freed += kObjects * ClassSize(SizeClassOf(size));
    largest = std::max<uint64_t>(largest, kObjects * ClassSize(SizeClassOf(size)));
  }
  uint64_t cached = CpuCache::CachedBytesOn(uint32_t(cpu));
  EXPECT_GT(cached, 0u) << "the last thread's overflows stay for the next one";
  EXPECT_LE(cached, 2 * largest) << "flushed in all: " << freed;
}

// Objects hold their own address and a tag in every word; a block handed
// out twice, or written while cached, shows as a wrong word.
void Fill(void *p, size_t n, uint64_t tag) {
  auto *w = static_cast<uint64_t *>(p);
  for (size_t i = 0; i < n / 8; i++) w[i] = reinterpret_cast<uintptr_t>(p) ^ tag ^ i;
}
bool Intact(void *p, size_t n, uint64_t tag) {
  auto *w = static_cast<uint64_t *>(p);
  for (size_t i = 0; i < n / 8; i++)
    if (w[i] != (reinterpret_cast<uintptr_t>(p) ^ tag ^ i)) return false;
  return true;
}

// Allocates and frees random sizes with a bounded live set, checking every
// object; moves between CPUs a and b every `bounce` steps when asked.
void Churn(uint64_t seed, int steps, int bounce, int a, int b, std::atomic<int> *bad) {
  std::mt19937_64 rng(seed);
  struct Obj {
    void *p;
    size_t n;
  };
  std::vector<Obj> live;
  for (int i = 0; i < steps; i++) {
    if (bounce > 0 && i % bounce == 0) PinTo(((i / bounce) & 1) ? b : a);
    if (live.size() < 500 && (live.empty() || rng() % 2 == 0)) {
      size_t n = 16 + rng() % 2048;
      void *p = spanalloc_malloc(n);
      if (p == nullptr) {
        bad->fetch_add(1);
        continue;
      }
      Fill(p, n, seed);
      live.push_back({p, n});
    } else {
      size_t k = rng() % live.size();
      if (!Intact(live[k].p, live[k].n, seed)) bad->fetch_add(1);
      spanalloc_free(live[k].p);
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (Obj &o : live) {
    if (!Intact(o.p, o.n, seed)) bad->fetch_add(1);
    spanalloc_free(o.p);
  }
}

// Churn without any allocation but spanalloc's (a fork child's).
void ChurnFixed(uint64_t seed, int steps, std::atomic<int> *bad) {
  constexpr int kMax = 256;
  void *p[kMax];
  size_t n[kMax];
  int live = 0;
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull, x >> 33; };
  for (int i = 0; i < steps; i++) {
    if (live < kMax && (live == 0 || next() % 2 == 0)) {
      n[live] = 16 + next() % 2048;
      p[live] = spanalloc_malloc(n[live]);
      if (p[live] == nullptr) {
        bad->fetch_add(1);
        continue;
      }
      Fill(p[live], n[live], seed);
      live++;
    } else {
      int k = int(next() % uint64_t(live));
      if (!Intact(p[k], n[k], seed)) bad->fetch_add(1);
      spanalloc_free(p[k]);
      live--;
      p[k] = p[live];
      n[k] = n[live];
    }
  }
  for (int k = 0; k < live; k++) {
    if (!Intact(p[k], n[k], seed)) bad->fetch_add(1);
    spanalloc_free(p[k]);
  }
}

TEST(CpuCache, ThreadsMovedBetweenCpusWhileAllocating) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "this process may run on one CPU only: nothing to move between";
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  // Four threads bounce in opposite phases, so each CPU's lists see pushes
  // and pops of several threads interleaved, and the kernel restarts
  // sequences that a migration interrupts.
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      Churn(1000 + t, 60000, 50 + 17 * t, cpus[t & 1], cpus[(t + 1) & 1], &bad);
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0) << "an object was handed out twice or changed while cached";
}

TEST(CpuCache, ManyMoreThreadsThanCpus) {
  REQUIRE_CPU_MODE();
  constexpr int kThreads = 24;
  std::atomic<int> bad{0}, done{0};
  std::atomic<bool> release{false};
  spanalloc_stats during{};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      Churn(2000 + t, 20000, 0, 0, 0, &bad);
      // Hold a cache's worth of free objects until every thread is here.
      std::vector<void *> objs;
      for (int i = 0; i < 2000; i++) objs.push_back(spanalloc_malloc(16 + (i % 64) * 16));
      for (void *p : objs) spanalloc_free(p);
      done.fetch_add(1);
      while (!release.load()) std::this_thread::yield();
    });
  while (done.load() < kThreads) std::this_thread::yield();
  spanalloc_get_stats(&during);
  release.store(true);
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  // 24 thread caches share SPANALLOC_THREAD_CACHE_KB per CPU (at least
  // kMinCpuModeBudget each, plus the first objects of every class they
  // touched); thread caches alone could hold 2,000 objects each here.
  uint64_t ncpu = CpuCache::NumCpus();
  uint64_t bound = ncpu * (g_options.cpu_cache_bytes + g_options.thread_cache_bytes) +
                   kThreads * (ThreadCache::kMinCpuModeBudget + 128 * 1024);
  EXPECT_LE(during.thread_cache_free, bound);
  EXPECT_GE(during.thread_caches, uint64_t(kThreads) + ncpu);
  EXPECT_LE(CpuCache::CachedBytes(), ncpu * g_options.cpu_cache_bytes);
}

// A thread on cpu frees n objects of `size` that this one allocated: what
// overflows its cache's list (all but its first few) goes to the CPU's lists.
void FillCpu(int cpu, size_t size, int n) {
  std::vector<void *> objs;
  for (int i = 0; i < n; i++) objs.push_back(spanalloc_malloc(size));
  std::thread t([&] {
    PinTo(cpu);
    for (void *p : objs) spanalloc_free(p);
  });
  t.join();
}

TEST(CpuCache, DrainEmptiesEveryCpu) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  for (int c : cpus) {
    FillCpu(c, 100, 300);
    EXPECT_GT(CpuCache::CachedBytesOn(uint32_t(c)), 0u);
  }
  cpu_set_t before, after;
  sched_getaffinity(0, sizeof before, &before);
  EXPECT_GT(CpuCache::Drain(0), 0u);
  EXPECT_EQ(CpuCache::CachedBytes(), 0u) << "nothing else runs in this process now";
  sched_getaffinity(0, sizeof after, &after);
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "Drain gives the thread its CPUs back";
  // release_free_memory (malloc_trim) drains too.
  FillCpu(cpus[0], 100, 300);
  EXPECT_GT(CpuCache::CachedBytes(), 0u);
  spanalloc_release_free_memory();
  EXPECT_EQ(CpuCache::CachedBytes(), 0u);
}

TEST(CpuCache, IdleDrainLeavesBusyCpus) {
  REQUIRE_CPU_MODE();
  FillCpu(UsableCpus()[0], 200, 300);  // slow paths there: the CPU is busy
  EXPECT_GT(CpuCache::CachedBytes(), 0u);
  EXPECT_EQ(CpuCache::Drain(3600 * 1000), 0u) << "no CPU has been idle for an hour";
  EXPECT_GT(CpuCache::CachedBytes(), 0u);
  // Idle for 1 ms between two looks (nothing else allocates much here; a
  // stray slow path only makes it wait for the next look).
  uint64_t drained = 0;
  for (int i = 0; i < 50 && drained == 0; i++) {
    usleep(5000);
    drained = CpuCache::Drain(1);
  }
  EXPECT_GT(drained, 0u) << "an idle CPU was drained";
}

TEST(CpuCacheDeath, DoubleFreeIsFound) {
  REQUIRE_CPU_MODE();
  auto twice = [] {
    void *p = spanalloc_malloc(48);
    spanalloc_free(p);
    spanalloc_free(p);
  };
  EXPECT_DEATH(twice(), "spanalloc: double free of 0x[0-9a-f]+ \\(spanalloc_free: 48-byte block, already on this thread.s free list");
}

TEST(CpuCacheDeath, OverwrittenLinkIsFoundByMalloc) {
  REQUIRE_CPU_MODE();
  auto corrupt = [] {
    void *p = spanalloc_malloc(48);
    spanalloc_free(p);
    memset(p, 0x41, 8);  // a write after free over the link
    void *again = spanalloc_malloc(48);
    void *next = spanalloc_malloc(48);
    fprintf(stderr, "not reached: %p %p\n", again, next);
  };
  EXPECT_DEATH(corrupt(), "spanalloc: free-list corruption of 0x[0-9a-f]+ \\(malloc: 48-byte block");
}

// The same in a CPU's list: a thread's frees overflow into its CPU's list,
// the program writes over one of them, the next thread's refill walks it.
TEST(CpuCacheDeath, OverwrittenLinkInACpuListIsFound) {
  REQUIRE_CPU_MODE();
  auto corrupt = [] {
    int cpu = UsableCpus()[0];
    void *objs[8];
    for (void *&p : objs) p = spanalloc_malloc(48);
    void *victim = objs[3];  // among the first five: they overflow into the CPU's list
    std::thread a([&] {
      PinTo(cpu);
      for (void *p : objs) spanalloc_free(p);
    });
    a.join();
    memset(victim, 0x41, 8);
    std::thread b([&] {
      PinTo(cpu);
      for (int i = 0; i < 64; i++) spanalloc_free(spanalloc_malloc(48));
    });
    b.join();
    PinTo(cpu);
    CpuCache::Drain(0);
  };
  EXPECT_DEATH(corrupt(), "spanalloc: free-list corruption of 0x[0-9a-f]+ \\((malloc|free): 48-byte block");
}

TEST(CpuCache, ForkChildKeepsWorkingWhileParentThreadsChurn) {
  REQUIRE_CPU_MODE();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; t++)
    ts.emplace_back([&, t] {
      while (!stop.load()) Churn(3000 + t, 2000, 0, 0, 0, &bad);
    });
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Only spanalloc's own allocations here: the sanitizers' allocators
      // (which std::vector and std::thread use in those builds) may have
      // been locked by a parent thread at the fork.
      std::atomic<int> child_bad{0};
      ChurnFixed(4000 + i, 20000, &child_bad);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
      std::thread t([&] { ChurnFixed(5000 + i, 5000, &child_bad); });
      t.join();
#endif
      _exit(child_bad.load() == 0 && CpuCache::On() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << i << " status " << status;
  }
  stop.store(true);
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace spanalloc
