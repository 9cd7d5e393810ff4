// Thread caches through the spanalloc_* API: the fast paths, refill and
// flush, the per-thread budget, and the return of a dying thread's cache.
#include "thread_cache.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "allocator.h"
#include "central_list.h"
#include "free_list.h"
#include "options.h"
#include "spanalloc.h"

namespace spanalloc {
namespace {

// free()'s object-start test (allocator.h) on 8 * (p - span start) with
// the list's magic and limit: exactly the starts of the span's objects, at
// every offset of every class's span; class 0 and the empty cache fail all.
TEST(ThreadCache, ListMagicAndLimitAcceptExactlyTheSpansObjects) {
  ThreadCache tc;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    const ClassShape &s = kClassShape[cl];
    const FreeList &l = tc.lists[cl];
    for (uint64_t off = 0; off < uint64_t(s.pages) * kPageSize; off++) {
      bool object = off % s.size == 0 && off / s.size < s.objects;
      ASSERT_EQ(8 * off * l.magic < l.limit, object) << "class " << cl << " off " << off;
    }
    EXPECT_EQ(g_empty_cache.lists[cl].limit, 0u);
  }
  EXPECT_EQ(tc.lists[0].limit, 0u);
}

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
    EXPECT_LE(l.length(), l.max_length) << "class " << cl;
    uint32_t n = 0;
    for (void *p = l.head; p != ListEnd(); p = LinkOf(p)) n++;
    EXPECT_EQ(n + tc->fresh(cl).count(), l.length()) << "class " << cl;
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
    EXPECT_LE(l.length() + 1, kClassShape[SizeClassOf(200)].batch);
    EXPECT_LE(l.max_length, std::max<uint32_t>(2 * ThreadCache::kInitialMaxLength, l.length() + 1));
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

// Slow paths publish only their own class's share of the cached bytes (by
// deltas); the running figure must equal a full recount whatever the lists
// did, growing and shrinking.
TEST(ThreadCache, PublishedBytesMatchAFullRecount) {
  std::thread t([] {
    std::vector<void *> objs;
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 4000; i++) objs.push_back(spanalloc_malloc(8 + (i * 37 + round * 11) % 3000));
      for (size_t i = 0; i < objs.size(); i += 2) spanalloc_free(objs[i]);
      std::vector<void *> kept;
      for (size_t i = 1; i < objs.size(); i += 2) kept.push_back(objs[i]);
      objs.swap(kept);
    }
    ThreadCache *tc = tls_cache;
    ASSERT_NE(tc, &g_empty_cache);
    uint64_t caches, by_class, recounted;
    for (uint32_t cl = 1; cl < kNumClasses; cl++) tc->PublishClass(cl);
    ThreadCache::RegistryStats(&caches, &by_class);
    tc->PublishBytes();
    ThreadCache::RegistryStats(&caches, &recounted);
    EXPECT_EQ(by_class, recounted) << "the other threads' caches are idle meanwhile";
    uint64_t mine = 0;
    for (uint32_t cl = 1; cl < kNumClasses; cl++) mine += uint64_t(tc->lists[cl].length()) * kClassShape[cl].size;
    EXPECT_GT(mine, 0u);
    EXPECT_GE(recounted, mine);
    for (void *p : objs) spanalloc_free(p);
  });
  t.join();
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

// Passive false sharing (thread_cache.cc): objects of a class below a cache
// line that a thread allocates back to back, to hand them to other threads,
// must not share a line. A new thread's first refill comes from the spans
// once the transfer slots are emptied.
TEST(ThreadCache, ConsecutiveTinyObjectsAreALineApart) {
  spanalloc_release_free_memory();
  std::thread t([] {
    for (size_t size : {8, 16, 32, 48}) {
      std::vector<uintptr_t> a;
      for (int i = 0; i < 4; i++) a.push_back(reinterpret_cast<uintptr_t>(spanalloc_malloc(size)));
      size_t n = size == 48 ? 3 : 4;  // 48 B: 5 objects to start, 3 on lines of their own
      for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
          EXPECT_TRUE(a[i] / 64 > (a[j] + size - 1) / 64 || a[j] / 64 > (a[i] + size - 1) / 64)
              << size << " B objects " << i << " and " << j << " share a cache line: " << std::hex << a[i] << " "
              << a[j];
      for (uintptr_t p : a) spanalloc_free(reinterpret_cast<void *>(p));
    }
  });
  t.join();
}

// Lazy carving (thread_cache.h, FreshRun): a refill that reaches a
// new span keeps the objects past the first OS page unlinked; they
// count in the list's length, come out one by one, each once, and go back
// to the central list unlinked.
TEST(ThreadCache, FreshObjectsCountInTheListAndComeOutOnce) {
  std::thread t([] {
    const uint32_t cl = SizeClassOf(256);
    std::vector<void *> objs;
    for (int i = 0; i < 200 && tls_cache->fresh(cl).count() == 0; i++) objs.push_back(spanalloc_malloc(256));
    const FreeList &l = tls_cache->lists[cl];
    const FreshRun &run = tls_cache->fresh(cl);
    ASSERT_GT(run.count(), 0u) << "slow start's refill of 32 reaches a second span";
    uint32_t linked = 0;
    for (void *p = l.head; p != ListEnd(); p = LinkOf(p)) linked++;
    EXPECT_EQ(linked + run.count(), l.length());
    EXPECT_LE(l.length(), l.max_length);
    const char *fresh = run.start();
    EXPECT_EQ(EntryClass(ClassEntry(fresh)), cl);
    EXPECT_EQ(SpanOf(fresh), SpanOf(fresh + (run.count() - 1) * kClassShape[cl].size)) << "one span";
    std::set<void *> seen(objs.begin(), objs.end());
    ASSERT_EQ(seen.size(), objs.size());
    for (uint32_t i = 0, n = l.length(); i < n; i++) {
      void *p = spanalloc_malloc(256);
      EXPECT_TRUE(seen.insert(p).second) << "handed out twice: " << p;
      objs.push_back(p);
    }
    EXPECT_EQ(run.count(), 0u);
    // Some back, then fresh ones again, then a flush with fresh objects left.
    const size_t first_round = objs.size();
    for (size_t i = 0; i < first_round; i += 2) spanalloc_free(objs[i]);
    for (int i = 0; i < 100; i++) objs.push_back(spanalloc_malloc(256));
    for (size_t i = 0; i < objs.size(); i++)
      if (i % 2 == 1 || i >= first_round) spanalloc_free(objs[i]);
  });
  t.join();
  for (uint32_t cl = 1; cl < kNumClasses; cl++) ASSERT_EQ(g_central[cl].Validate(), nullptr);
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
