// The kernel refusing memory part-way through an operation: os_memory.cc is
// built here with SPANALLOC_OS_FAULT_INJECTION, so the n-th mapping call from
// now fails (the heap's growth itself, a page-map leaf, a metadata chunk, a
// thread cache, an mremap). Every allocation then returns a usable block or
// nullptr with ENOMEM, the heap's structures stay valid, and everything works
// again once the kernel gives memory.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "allocator.h"
#include "central_list.h"
#include "os_memory.h"
#include "page_heap.h"
#include "spanalloc.h"

namespace spanalloc {
namespace {

struct Block {
  void *p;
  size_t n;
};

// Allocates a mix that makes the heap grow: fresh large blocks (a new mapping
// each, some beyond a page-map leaf: new leaves), medium and small classes.
void Workload(size_t round, std::vector<Block> *held, int *failures) {
  const size_t sizes[] = {48 + 16 * round, 3000, 20000, (40 + round) << 20, size_t(3) << 30, 100000};
  for (size_t n : sizes) {
    errno = 0;
    void *p = Alloc(n);
    if (p == nullptr) {
      EXPECT_EQ(errno, ENOMEM) << "size " << n;
      ++*failures;
      continue;
    }
    memset(p, 0x3c, n < 65536 ? n : 65536);
    static_cast<char *>(p)[n - 1] = 1;
    held->push_back({p, n});
  }
  errno = 0;
  void *c = Calloc(1000, 1000);
  if (c == nullptr) {
    EXPECT_EQ(errno, ENOMEM);
    ++*failures;
  } else {
    held->push_back({c, 1000000});
  }
}

void ExpectValid() {
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
  for (uint32_t cl = 1; cl < kNumClasses; cl++) EXPECT_EQ(g_central[cl].Validate(), nullptr) << "class " << cl;
}

class OsFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { EnsureInitialized(); }
  void TearDown() override { OsInjectFaults(0, 0); }
};

TEST_F(OsFaultTest, OneCallFailsAtEveryPointOfAGrowth) {
  uint64_t before = OsInjectedFailures();
  int failures = 0;
  for (size_t skip = 0; skip < 12; skip++) {
    std::vector<Block> held;
    OsInjectFaults(skip, 1);
    Workload(skip, &held, &failures);
    OsInjectFaults(0, 0);
    ExpectValid();
    for (Block b : held) Free(b.p);
    // Works again: the same mix succeeds in full.
    held.clear();
    int again = 0;
    Workload(skip, &held, &again);
    EXPECT_EQ(again, 0) << "after the fault at call " << skip;
    for (Block b : held) Free(b.p);
    ExpectValid();
  }
  EXPECT_GT(OsInjectedFailures(), before) << "no mapping call was ever failed: the test exercised nothing";
  EXPECT_GT(failures, 0);
}

TEST_F(OsFaultTest, EveryCallFailsFromSomePointOn) {
  int failures = 0;
  for (size_t skip = 0; skip < 8; skip++) {
    std::vector<Block> held;
    OsInjectFaults(skip, ~uint64_t{0});
    Workload(20 + skip, &held, &failures);
    // A thread whose cache cannot be made still allocates (from the central lists).
    std::thread t([&] {
      void *p = Alloc(64);
      if (p != nullptr) Free(p);
    });
    t.join();
    OsInjectFaults(0, 0);
    ExpectValid();
    for (Block b : held) Free(b.p);
    ExpectValid();
  }
  EXPECT_GT(failures, 0);
  std::vector<Block> held;
  int again = 0;
  Workload(40, &held, &again);
  EXPECT_EQ(again, 0);
  for (Block b : held) Free(b.p);
}

TEST_F(OsFaultTest, ReallocOfALargeBlockWhenMappingFails) {
  for (size_t skip = 0; skip < 6; skip++) {
    size_t n = size_t(2) << 20;
    auto *p = static_cast<unsigned char *>(Alloc(n));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < n; i += 4096) p[i] = static_cast<unsigned char>(i / 4096);
    OsInjectFaults(skip, ~uint64_t{0});
    errno = 0;
    auto *q = static_cast<unsigned char *>(Realloc(p, size_t(64) << 20));
    OsInjectFaults(0, 0);
    if (q == nullptr) {
      EXPECT_EQ(errno, ENOMEM);
      q = p;  // untouched, as C requires
    }
    for (size_t i = 0; i < n; i += 4096) ASSERT_EQ(q[i], static_cast<unsigned char>(i / 4096)) << "skip " << skip;
    Free(q);
    ExpectValid();
  }
}

}  // namespace
}  // namespace spanalloc
