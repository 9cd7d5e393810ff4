// Thread churn: thousands of short-lived threads, each allocating and
// exiting. Memory must stay bounded and the caches of dead threads must go
// back (spanalloc_stats.thread_caches does not grow with dead threads).
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api_common.h"

using namespace api;

namespace {

// Blocks handed from one generation of threads to the next (cross-thread frees).
std::mutex g_handoff_mu;
std::vector<std::pair<void *, size_t>> g_handoff;
std::atomic<uint64_t> g_bad{0};

void short_lived(uint64_t seed) {
  Rng rng(seed);
  void *blocks[64];
  size_t sizes[64];
  for (int i = 0; i < 64; ++i) {
    size_t n = 1 + rng.below(i % 16 == 0 ? 64 * kKiB : 1024);
    blocks[i] = (i % 3 == 0) ? static_cast<void *>(new char[n]) : malloc(n);
    sizes[i] = n;
    fill_pattern(blocks[i], n, 6);
  }
  // Free others' blocks handed over by earlier threads, hand over some own.
  std::vector<std::pair<void *, size_t>> take;
  {
    std::lock_guard<std::mutex> g(g_handoff_mu);
    take.swap(g_handoff);
    for (int i = 0; i < 64; i += 8) {
      if (i % 3 == 0) continue;  // only malloc'd blocks are handed over
      g_handoff.emplace_back(blocks[i], sizes[i]);
      blocks[i] = nullptr;
    }
  }
  for (auto &[p, n] : take) {
    if (check_pattern(p, n, 6) != SIZE_MAX) g_bad.fetch_add(1);
    free(p);
  }
  for (int i = 0; i < 64; ++i) {
    if (!blocks[i]) continue;
    if (check_pattern(blocks[i], sizes[i], 6) != SIZE_MAX) g_bad.fetch_add(1);
    if (i % 3 == 0) delete[] static_cast<char *>(blocks[i]);
    else free(blocks[i]);
  }
}

// Runs `count` threads, at most `parallel` alive at a time.
void churn(int count, int parallel, uint64_t seed) {
  std::vector<std::thread> ts;
  for (int i = 0; i < count; ++i) {
    ts.emplace_back(short_lived, seed + static_cast<uint64_t>(i));
    if (static_cast<int>(ts.size()) == parallel) {
      for (auto &t : ts) t.join();
      ts.clear();
    }
  }
  for (auto &t : ts) t.join();
}

bool read_stats(spanalloc_stats *s) {
  StatsFn f = stats_fn();
  return f && f(s) == 0;
}

}  // namespace

TEST(ThreadChurn, ThousandsOfThreadsBoundedMemory) {
  churn(500, 4, 1);  // warm-up
  spanalloc_stats before{};
  const bool have_stats = read_stats(&before);
  if (kLinked) {
    ASSERT_TRUE(have_stats);
  }
  const size_t rss0 = rss_bytes();
  churn(5000, 4, 100000);
  const size_t rss1 = rss_bytes();
  EXPECT_EQ(g_bad.load(), 0u) << "blocks changed contents";
  EXPECT_LT(rss1, rss0 + 48 * kMiB) << "RSS grew from " << rss0 / kKiB << " KiB to " << rss1 / kKiB
                                    << " KiB over 5000 short-lived threads";
  if (have_stats) {
    spanalloc_stats after{};
    ASSERT_TRUE(read_stats(&after));
    EXPECT_LE(after.thread_caches, before.thread_caches + 2)
        << "live thread caches grew from " << before.thread_caches << " to " << after.thread_caches
        << " although every churned thread has been joined";
    EXPECT_LT(after.metadata, before.metadata + 16 * kMiB)
        << "allocator metadata grew from " << before.metadata << " to " << after.metadata;
    EXPECT_LT(after.thread_cache_free, 64 * kMiB);
  }
  std::lock_guard<std::mutex> g(g_handoff_mu);
  for (auto &[p, n] : g_handoff) free(p);
  g_handoff.clear();
}

TEST(ThreadChurn, ManyThreadsAliveAtOnce) {
  spanalloc_stats before{};
  const bool have_stats = read_stats(&before);
  const size_t rss0 = rss_bytes();
  for (int round = 0; round < 5; ++round) churn(64, 64, 7000 + round * 64);
  EXPECT_EQ(g_bad.load(), 0u);
  EXPECT_LT(rss_bytes(), rss0 + 64 * kMiB);
  if (have_stats) {
    spanalloc_stats after{};
    ASSERT_TRUE(read_stats(&after));
    EXPECT_LE(after.thread_caches, before.thread_caches + 2);
  }
  std::lock_guard<std::mutex> g(g_handoff_mu);
  for (auto &[p, n] : g_handoff) free(p);
  g_handoff.clear();
}

namespace {
void *detached_body(void *arg) {
  short_lived(reinterpret_cast<uintptr_t>(arg));
  return nullptr;
}
}  // namespace

// Threads that end with pthread_exit, detached threads, and threads that
// never allocate: none of them may leave a cache behind.
TEST(ThreadChurn, DetachedAndExitingThreads) {
  spanalloc_stats before{};
  const bool have_stats = read_stats(&before);
  const size_t rss0 = rss_bytes();
  for (int i = 0; i < 1000; ++i) {
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, nullptr, detached_body, reinterpret_cast<void *>(uintptr_t(40000 + i))), 0);
    pthread_detach(t);
    if (i % 4 == 3) usleep(200);
  }
  for (int i = 0; i < 500; ++i) {
    std::thread t([i] {
      void *p = malloc(100 + i);
      memset(p, 1, 100 + i);
      free(p);
      pthread_exit(nullptr);
    });
    t.join();
    std::thread idle([] {});
    idle.join();
  }
  // Let the detached threads finish (their caches go back at exit).
  for (int i = 0; i < 200; ++i) {
    spanalloc_stats now{};
    if (!have_stats || (read_stats(&now) && now.thread_caches <= before.thread_caches + 2)) break;
    usleep(10000);
  }
  usleep(50000);
  EXPECT_EQ(g_bad.load(), 0u);
  EXPECT_LT(rss_bytes(), rss0 + 48 * kMiB);
  if (have_stats) {
    spanalloc_stats after{};
    ASSERT_TRUE(read_stats(&after));
    EXPECT_LE(after.thread_caches, before.thread_caches + 2);
  }
  std::lock_guard<std::mutex> g(g_handoff_mu);
  for (auto &[p, n] : g_handoff) free(p);
  g_handoff.clear();
}
