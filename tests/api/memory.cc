// Memory reuse as seen from outside (RSS from /proc/self/statm): freed memory
// is reused, by the same thread and by other threads, and a thread's cache of
// free objects is bounded, so repeated cycles do not grow the process.
#include <malloc.h>
#include <stdlib.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

// Allocates about `bytes` in blocks of random sizes within [lo, hi], touching
// every page, and returns them.
std::vector<void *> fill(Rng &rng, size_t bytes, size_t lo, size_t hi) {
  std::vector<void *> v;
  size_t total = 0;
  while (total < bytes) {
    size_t n = lo + rng.below(hi - lo + 1);
    void *p = malloc(n);
    if (!p) break;
    memset(p, 0x77, n);
    v.push_back(p);
    total += n;
  }
  return v;
}

void release(std::vector<void *> &v) {
  for (void *p : v) free(p);
  v.clear();
}

}  // namespace

TEST(Memory, RepeatedCyclesDoNotGrow) {
  Rng rng(17);
  struct Range {
    size_t lo, hi;
  };
  for (Range r : {Range{1, 256}, Range{257, 32 * kKiB}, Range{32 * kKiB + 1, 2 * kMiB}, Range{1, 64 * kKiB}}) {
    std::vector<void *> v = fill(rng, 24 * kMiB, r.lo, r.hi);
    release(v);
    const size_t rss1 = rss_bytes();
    for (int round = 0; round < 12; ++round) {
      v = fill(rng, 24 * kMiB, r.lo, r.hi);
      release(v);
    }
    const size_t rss2 = rss_bytes();
    EXPECT_LT(rss2, rss1 + 16 * kMiB) << "sizes " << r.lo << ".." << r.hi << ": RSS " << rss1 / kKiB << " KiB -> "
                                      << rss2 / kKiB << " KiB over 12 cycles of 24 MiB allocated and freed";
  }
}

// Memory freed by one thread (which stays alive, holding its cache) is
// reused by another thread: the first thread's cache is bounded.
TEST(Memory, FreedByOneThreadReusedByAnother) {
  struct Range {
    size_t lo, hi;
  };
  for (Range r : {Range{16, 128}, Range{1000, 20000}, Range{40 * kKiB, kMiB}}) {
    std::atomic<int> stage{0};
    size_t rss_a = 0, rss_b = 0;
    std::thread a([&] {
      Rng rng(1);
      std::vector<void *> v = fill(rng, 64 * kMiB, r.lo, r.hi);
      rss_a = rss_bytes();  // peak of the first thread
      release(v);
      stage = 1;
      while (stage.load() != 2) std::this_thread::yield();  // stay alive, cache intact
    });
    while (stage.load() != 1) std::this_thread::yield();
    std::thread b([&] {
      Rng rng(2);
      std::vector<void *> v = fill(rng, 64 * kMiB, r.lo, r.hi);
      rss_b = rss_bytes();  // peak of the second thread
      release(v);
    });
    b.join();
    stage = 2;
    a.join();
    EXPECT_LT(rss_b, rss_a + 24 * kMiB) << "sizes " << r.lo << ".." << r.hi << ": with 64 MiB live, RSS was "
                                        << rss_a / kKiB << " KiB in the first thread and " << rss_b / kKiB
                                        << " KiB in the second, which should have reused the first's freed memory";
  }
}

// Many objects freed by a thread that keeps running: the memory held free in
// its cache stays small (statistics, where reachable).
TEST(Memory, ThreadCacheIsBounded) {
  StatsFn stats = stats_fn();
  if (!stats) GTEST_SKIP() << "spanalloc_get_stats not reachable";
  for (size_t n : {16ul, 64ul, 512ul, 4096ul, 32768ul}) {
    std::vector<void *> v;
    for (size_t total = 0; total < 32 * kMiB; total += n) v.push_back(malloc(n));
    release(v);
    spanalloc_stats s{};
    // Allocate and free one object so that statistics at the last flush are recent.
    free(malloc(n));
    ASSERT_EQ(stats(&s), 0);
    // Everything freed must be somewhere: the caches hold only a bounded part.
    EXPECT_LT(s.thread_cache_free, 16 * kMiB) << "size " << n << ": thread caches hold " << s.thread_cache_free
                                              << " bytes after 32 MiB were freed";
  }
}
