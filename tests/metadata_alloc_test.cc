#include "metadata_alloc.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace spanalloc {
namespace {

struct Thing {
  uint64_t a[5];
  int b;
};

TEST(MetadataAlloc, ObjectsAreDistinctZeroedAndRecycled) {
  static constinit FixedAlloc<Thing> alloc;
  std::vector<Thing *> things;
  for (int i = 0; i < 10000; i++) {
    Thing *t = alloc.New();
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->b, 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t) % 16, 0u);
    t->b = i;
    t->a[4] = ~uint64_t(i);
    things.push_back(t);
  }
  std::set<Thing *> unique(things.begin(), things.end());
  EXPECT_EQ(unique.size(), things.size());
  for (int i = 0; i < 10000; i++) EXPECT_EQ(things[i]->b, i);
  EXPECT_EQ(alloc.in_use(), 10000u);
  Thing *last = things.back();
  alloc.Delete(last);
  Thing *again = alloc.New();
  EXPECT_EQ(again, last) << "freed object is reused first";
  EXPECT_EQ(again->b, 0) << "reused object is zeroed";
  for (Thing *t : things) alloc.Delete(t);
  EXPECT_EQ(alloc.in_use(), 0u);
}

// Delete of several objects in one call (the page heap's, for the Span
// objects coalescing merges away), and 64-byte aligned types (Span).
struct alignas(64) Wide {
  uint64_t a[20];
};
TEST(MetadataAlloc, ManyDeletedInOneCallAreReusedAndAlignmentHolds) {
  static constinit FixedAlloc<Wide> alloc;
  static_assert(FixedAlloc<Wide>::kSize == 192);
  std::vector<Wide *> w;
  for (int i = 0; i < 3000; i++) {  // past one 256 KiB chunk
    w.push_back(alloc.New());
    ASSERT_NE(w.back(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w.back()) % 64, 0u);
    w.back()->a[19] = ~uint64_t(i);
  }
  alloc.Delete(w.data() + 100, 0);  // nothing
  EXPECT_EQ(alloc.in_use(), 3000u);
  alloc.Delete(w.data() + 100, 50);
  EXPECT_EQ(alloc.in_use(), 2950u);
  std::set<Wide *> freed(w.begin() + 100, w.begin() + 150);
  for (int i = 0; i < 50; i++) {
    Wide *x = alloc.New();
    EXPECT_EQ(freed.erase(x), 1u) << "freed objects are reused first";
    EXPECT_EQ(x->a[19], 0u) << "and zeroed";
    w[100 + i] = x;
  }
  alloc.Delete(w.data(), w.size());
  EXPECT_EQ(alloc.in_use(), 0u);
}

TEST(MetadataAlloc, ThreadSafe) {
  static constinit FixedAlloc<Thing> alloc;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([] {
      std::vector<Thing *> mine;
      for (int i = 0; i < 20000; i++) {
        mine.push_back(alloc.New());
        mine.back()->b = i;
        if (i % 3 == 0) {
          alloc.Delete(mine.back());
          mine.pop_back();
        }
      }
      for (Thing *t : mine) alloc.Delete(t);
    });
  }
  for (auto &t : threads) t.join();
  EXPECT_EQ(alloc.in_use(), 0u);
}

// Pages holding only free objects go back to the OS; their objects come
// back zeroed, none twice, and live objects keep their contents.
TEST(MetadataAlloc, ReleaseFreePagesKeepsLiveObjectsAndReusesTheRest) {
  static constinit FixedAlloc<Thing> alloc;
  std::vector<Thing *> things;
  for (int i = 0; i < 40000; i++) {  // several chunks
    Thing *t = alloc.New();
    ASSERT_NE(t, nullptr);
    t->b = i + 1;
    things.push_back(t);
  }
  // Keep every 500th object live; free the rest.
  std::vector<Thing *> live;
  for (size_t i = 0; i < things.size(); i++) {
    if (i % 500 == 0)
      live.push_back(things[i]);
    else
      alloc.Delete(things[i]);
  }
  size_t released = alloc.ReleaseFreePages();
  EXPECT_GT(released, size_t{1} << 20) << "most pages hold only free objects";
  for (Thing *t : live) EXPECT_NE(t->b, 0);
  EXPECT_EQ(alloc.ReleaseFreePages() % 4096, 0u);  // again: nothing breaks
  std::set<Thing *> seen(live.begin(), live.end());
  std::vector<Thing *> again;
  for (size_t i = 0; i < things.size() - live.size(); i++) {
    Thing *t = alloc.New();
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->b, 0) << "reused object is zeroed";
    EXPECT_EQ(t->a[4], 0u);
    EXPECT_TRUE(seen.insert(t).second) << "object handed out twice";
    t->b = -1;
    again.push_back(t);
  }
  for (size_t i = 0; i < live.size(); i++) EXPECT_NE(live[i]->b, -1);
  for (Thing *t : again) alloc.Delete(t);
  for (Thing *t : live) alloc.Delete(t);
  EXPECT_EQ(alloc.in_use(), 0u);
}

}  // namespace
}  // namespace spanalloc
