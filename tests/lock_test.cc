// The allocator's mutex and its rank order (lock.h).
#include "lock.h"

#include <gtest/gtest.h>

#include <thread>

#include "central_list.h"
#include "lifecycle.h"
#include "page_heap.h"

namespace spanalloc {
namespace {

TEST(LockRank, HigherRanksMayBeTakenUnderLowerOnes) {
  uint8_t held[kNumLockRanks] = {};
  EXPECT_TRUE(LockRankAllows(held, LockRank::kInit, false));
  held[int(LockRank::kRegistry)] = 1;
  EXPECT_TRUE(LockRankAllows(held, LockRank::kCentral, false));
  EXPECT_TRUE(LockRankAllows(held, LockRank::kMetadata, false));
  EXPECT_FALSE(LockRankAllows(held, LockRank::kInit, false));
  EXPECT_FALSE(LockRankAllows(held, LockRank::kRegistry, false)) << "same rank twice";
}

TEST(LockRank, OnlyForkTakesOneRankTwice) {
  uint8_t held[kNumLockRanks] = {};
  held[int(LockRank::kCentral)] = 5;  // fork holds every central list at once
  EXPECT_FALSE(LockRankAllows(held, LockRank::kCentral, false));
  EXPECT_TRUE(LockRankAllows(held, LockRank::kCentral, true));
  EXPECT_TRUE(LockRankAllows(held, LockRank::kPageHeap, true));
  EXPECT_FALSE(LockRankAllows(held, LockRank::kRegistry, true)) << "fork goes up the ranks too";
}

#ifndef NDEBUG  // release builds do not store ranks (lock.h)
TEST(LockRank, EveryLockIsDeclaredWithItsRank) {
  EXPECT_EQ(g_central[1].lock().rank(), LockRank::kCentral);
  EXPECT_EQ(g_page_heap.lock().rank(), LockRank::kPageHeap);
  EXPECT_EQ(g_page_heap.span_alloc().lock().rank(), LockRank::kMetadata);
}
#endif

// A lock and zero fields make an all-zero object: the big allocator globals
// sit in .bss, where pages never written cost no RSS (lock.h).
TEST(Mutex, ReleaseBuildsStoreNoRank) {
#ifdef NDEBUG
  EXPECT_EQ(sizeof(Mutex), sizeof(uint32_t));
#else
  EXPECT_GT(sizeof(Mutex), sizeof(uint32_t));
#endif
}

TEST(Mutex, ExcludesOtherThreads) {
  Mutex m(LockRank::kCentral);
  uint64_t counter = 0;
  auto work = [&] {
    for (int i = 0; i < 20000; i++) {
      MutexLock l(m);
      counter++;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(counter, 40000u);
  EXPECT_FALSE(m.IsHeld());
}

#ifndef NDEBUG
// Debug builds check the order on every Lock().
TEST(LockRankDeathTest, OutOfOrderIsFatalInDebugBuilds) {
  EnsureInitialized();
  EXPECT_DEATH(
      {
        MutexLock heap(g_page_heap.lock());
        MutexLock central(g_central[3].lock());
      },
      "lock order: taking the central list lock while holding");
  auto same_rank_twice = [] {
    Mutex a(LockRank::kCentral), b(LockRank::kCentral);
    MutexLock la(a);
    MutexLock lb(b);
  };
  EXPECT_DEATH(same_rank_twice(), "lock order");
}
#endif

}  // namespace
}  // namespace spanalloc
