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
  EXPECT_EQ(tls_cache, &g_empty_cache) << "no thread cache in cpu mode";
  EXPECT_GE(CpuCache::NumCpus(), 1u);
  int cpu = CpuCache::CurrentCpu();
  EXPECT_GE(cpu, 0);
  EXPECT_LT(uint32_t(cpu), CpuCache::NumCpus());
}

TEST(CpuCache, ReusesTheLastFreedObjectOnOneCpu) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  ASSERT_FALSE(cpus.empty());
  RestoreAffinity restore;
  ASSERT_TRUE(PinTo(cpus[0]));
  void *p = spanalloc_malloc(40);
  ASSERT_NE(p, nullptr);
  spanalloc_free(p);
  // Another thread on the same CPU may only push and pop in between, and
  // none runs here: the CPU's list gives p back.
  EXPECT_EQ(spanalloc_malloc(40), p);
  spanalloc_free(p);
}

TEST(CpuCache, EachCpuStaysWithinItsBudget) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  RestoreAffinity restore;
  ASSERT_TRUE(PinTo(cpus[0]));
  // Every class's share sums to at most the budget.
  uint64_t shares = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) shares += uint64_t(CpuCache::MaxLength(cl)) * ClassSize(cl);
  EXPECT_LE(shares, g_options.cpu_cache_bytes);
  EXPECT_GE(CpuCache::MaxLength(SizeClassOf(64)), kClassShape[SizeClassOf(64)].batch)
      << "the default budget gives small classes at least a batch";
  std::vector<void *> objs;
  for (size_t n = 16; n <= 32768; n += 16)
    for (int i = 0; i < 40; i++) objs.push_back(spanalloc_malloc(n));
  for (void *p : objs) spanalloc_free(p);
  EXPECT_LE(CpuCache::CachedBytesOn(uint32_t(cpus[0])), g_options.cpu_cache_bytes);
  EXPECT_GT(CpuCache::CachedBytesOn(uint32_t(cpus[0])), 0u) << "frees went to this CPU's cache";
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
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 24; t++) ts.emplace_back([&, t] { Churn(2000 + t, 20000, 0, 0, 0, &bad); });
  for (auto &t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(tls_cache, &g_empty_cache);
  spanalloc_stats s;
  spanalloc_get_stats(&s);
  EXPECT_EQ(s.thread_caches, CpuCache::NumCpus()) << "24 threads, one cache per CPU and none per thread";
  EXPECT_LE(CpuCache::CachedBytes(), uint64_t(CpuCache::NumCpus()) * g_options.cpu_cache_bytes);
}

TEST(CpuCache, DrainEmptiesEveryCpu) {
  REQUIRE_CPU_MODE();
  std::vector<int> cpus = UsableCpus();
  {
    RestoreAffinity restore;
    for (int c : cpus) {
      ASSERT_TRUE(PinTo(c));
      std::vector<void *> objs;
      for (int i = 0; i < 300; i++) objs.push_back(spanalloc_malloc(100));
      for (void *p : objs) spanalloc_free(p);
      EXPECT_GT(CpuCache::CachedBytesOn(uint32_t(c)), 0u);
    }
  }
  cpu_set_t before, after;
  sched_getaffinity(0, sizeof before, &before);
  EXPECT_GT(CpuCache::Drain(0), 0u);
  EXPECT_EQ(CpuCache::CachedBytes(), 0u) << "nothing else runs in this process now";
  sched_getaffinity(0, sizeof after, &after);
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "Drain gives the thread its CPUs back";
  // release_free_memory (malloc_trim) drains too.
  spanalloc_free(spanalloc_malloc(100));
  spanalloc_release_free_memory();
  EXPECT_EQ(CpuCache::CachedBytes(), 0u);
}

TEST(CpuCache, IdleDrainLeavesBusyCpus) {
  REQUIRE_CPU_MODE();
  spanalloc_free(spanalloc_malloc(100));  // this CPU just had... maybe a hit only
  std::vector<void *> objs;
  for (int i = 0; i < 300; i++) objs.push_back(spanalloc_malloc(200));
  for (void *p : objs) spanalloc_free(p);  // slow paths: every CPU we ran on is busy
  uint64_t cached = CpuCache::CachedBytes();
  EXPECT_GT(cached, 0u);
  EXPECT_EQ(CpuCache::Drain(3600 * 1000), 0u) << "no CPU has been idle for an hour";
}

TEST(CpuCacheDeath, DoubleFreeIsFound) {
  REQUIRE_CPU_MODE();
  auto twice = [] {
    void *p = spanalloc_malloc(48);
    spanalloc_free(p);
    spanalloc_free(p);
  };
  EXPECT_DEATH(twice(), "spanalloc: double free of 0x[0-9a-f]+ \\(spanalloc_free: 48-byte block, already on this CPU.s free list");
}

TEST(CpuCacheDeath, OverwrittenLinkIsFoundByMalloc) {
  REQUIRE_CPU_MODE();
  auto corrupt = [] {
    PinTo(UsableCpus()[0]);
    void *p = spanalloc_malloc(48);
    spanalloc_free(p);
    memset(p, 0x41, 8);  // a write after free over the link
    void *again = spanalloc_malloc(48);
    void *next = spanalloc_malloc(48);
    fprintf(stderr, "not reached: %p %p\n", again, next);
  };
  EXPECT_DEATH(corrupt(), "spanalloc: free-list corruption of 0x[0-9a-f]+ \\(malloc: 48-byte block");
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
      std::atomic<int> child_bad{0};
      Churn(4000 + i, 20000, 0, 0, 0, &child_bad);
      std::thread t([&] { Churn(5000 + i, 5000, 0, 0, 0, &child_bad); });
      t.join();
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
