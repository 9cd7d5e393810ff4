// Thread caches through the spanalloc_* API: the fast paths, refill and
// flush, the per-thread budget, and the return of a dying thread's cache.
#include "thread_cache.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "allocator.h"
#include "central_list.h"
#include "free_list.h"
#include "options.h"
#include "spanalloc.h"

namespace spanalloc {
namespace {

TEST(ThreadCache, ReusesTheLastFreedObject) {
  void *p = spanalloc_malloc(40);
  ASSERT_NE(p, nullptr);
  spanalloc_free(p);
  EXPECT_EQ(spanalloc_malloc(40), p) << "LIFO reuse from the thread cache";
  spanalloc_free(p);
}

TEST(ThreadCache, ListLengthsStayWithinTheirBounds) {
  std::vector<void *> objs;
  for (int i = 0; i < 20000; i++) objs.push_back(spanalloc_malloc(64));
  for (void *p : objs) spanalloc_free(p);
  ThreadCache *tc = tls_cache;
  ASSERT_NE(tc, &g_empty_cache);
  uint64_t max_bytes = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    const FreeList &l = tc->lists[cl];
    EXPECT_LE(l.length, l.max_length) << "class " << cl;
    uint32_t n = 0;
    for (void *p = l.head; p; p = LinkOf(p)) n++;
    EXPECT_EQ(n, l.length) << "class " << cl;
    max_bytes += uint64_t(l.max_length) * kClassShape[cl].size;
  }
  // Every list may reach one batch; growth past that stays within the budget.
  uint64_t batches = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) batches += uint64_t(kClassShape[cl].batch) * kClassShape[cl].size;
  EXPECT_LE(max_bytes, g_options.thread_cache_bytes + batches);
  EXPECT_GT(tc->lists[SizeClassOf(64)].max_length, kClassShape[SizeClassOf(64)].batch)
      << "a list in steady use grows past one batch";
}

TEST(ThreadCache, SlowStartTakesFewObjectsFirst) {
  std::thread t([] {
    void *p = spanalloc_malloc(200);
    ThreadCache *tc = tls_cache;
    const FreeList &l = tc->lists[SizeClassOf(200)];
    // The first refill asked for kInitialMaxLength objects (or got one whole
    // transfer batch): never more than one batch.
    EXPECT_LE(l.length + 1, kClassShape[SizeClassOf(200)].batch);
    EXPECT_LE(l.max_length, std::max<uint32_t>(2 * ThreadCache::kInitialMaxLength, l.length + 1));
    spanalloc_free(p);
  });
  t.join();
}

TEST(ThreadCache, ExitingThreadReturnsItsCache) {
  spanalloc_stats before;
  spanalloc_get_stats(&before);
  std::thread t([] {
    std::vector<void *> objs;
    for (int i = 0; i < 5000; i++) objs.push_back(spanalloc_malloc(24 + i % 200));
    for (void *p : objs) spanalloc_free(p);
    spanalloc_stats during;
    spanalloc_get_stats(&during);
    EXPECT_GT(during.thread_cache_free, 0u);
  });
  t.join();
  spanalloc_stats after;
  spanalloc_get_stats(&after);
  EXPECT_EQ(after.thread_caches, before.thread_caches) << "the dead thread's cache is gone";
}

TEST(ThreadCache, ManyThreadsDoNotAccumulateCaches) {
  spanalloc_stats before;
  spanalloc_get_stats(&before);
  for (int round = 0; round < 50; round++) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; i++)
      threads.emplace_back([] {
        void *p = spanalloc_malloc(100);
        spanalloc_free(p);
      });
    for (auto &t : threads) t.join();
  }
  spanalloc_stats after;
  spanalloc_get_stats(&after);
  EXPECT_EQ(after.thread_caches, before.thread_caches);
}

TEST(ThreadCache, ObjectsFreedOnAnotherThreadAreReused) {
  const int n = 10000;
  std::vector<void *> objs(n);
  std::thread producer([&] {
    for (int i = 0; i < n; i++) {
      objs[i] = spanalloc_malloc(48);
      static_cast<uint64_t *>(objs[i])[1] = uint64_t(i);
    }
  });
  producer.join();
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(static_cast<uint64_t *>(objs[i])[1], uint64_t(i));
    spanalloc_free(objs[i]);
  }
  for (uint32_t cl = 1; cl < kNumClasses; cl++) ASSERT_EQ(g_central[cl].Validate(), nullptr);
}

}  // namespace
}  // namespace spanalloc
