// The compound operations of allocator.cc through the spanalloc_* API:
// realloc of large blocks (in place, or moved with mremap), calloc on reused
// and released memory, aligned allocation, usable sizes.
#include "allocator.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "page_heap.h"
#include "page_map.h"
#include "spanalloc.h"

namespace spanalloc {
namespace {

size_t ResidentKiB() {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == nullptr || fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  if (f) fclose(f);
  return size_t(resident) * size_t(getpagesize()) / 1024;
}

void FillBytes(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 4096) p[i] = static_cast<unsigned char>(seed + i / 4096);
  p[n - 1] = static_cast<unsigned char>(seed ^ 0x5a);
}
bool CheckBytes(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += 4096)
    if (p[i] != static_cast<unsigned char>(seed + i / 4096)) return false;
  return p[n - 1] == static_cast<unsigned char>(seed ^ 0x5a);
}

// Found by tests/fuzz/api_fuzz: the first allocation of a process left the
// ENOENT of an option file it had looked for. (CTest runs each test in its own
// process, so this is the process's first allocation.)
TEST(Init, FirstAllocationKeepsErrno) {
  errno = 1234;
  void *p = nullptr;
  ASSERT_EQ(spanalloc_posix_memalign(&p, 64, 100), 0);
  EXPECT_EQ(errno, 1234);
  void *q = spanalloc_malloc(20);
  EXPECT_EQ(errno, 1234);
  spanalloc_free(q);
  spanalloc_free(p);
  EXPECT_EQ(errno, 1234);
}

TEST(Realloc, LargeShrinkStaysInPlaceAndFreesTheTail) {
  auto *p = static_cast<unsigned char *>(spanalloc_malloc(1 << 20));
  FillBytes(p, 200 << 10, 3);
  uint64_t before = g_page_heap.Stats().large_bytes;
  auto *q = static_cast<unsigned char *>(spanalloc_realloc(p, 200 << 10));
  EXPECT_EQ(q, p);
  EXPECT_TRUE(CheckBytes(q, 200 << 10, 3));
  EXPECT_EQ(spanalloc_usable_size(q), size_t(200) << 10);
  EXPECT_EQ(g_page_heap.Stats().large_bytes, before - ((1 << 20) - (200 << 10)));
  spanalloc_free(q);
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
}

TEST(Realloc, LargeGrowthTakesTheFreeNeighbour) {
  // Allocate two neighbours, free the second: the first grows into it.
  auto *a = static_cast<unsigned char *>(spanalloc_malloc(64 << 10));
  void *b = spanalloc_malloc(256 << 10);
  ASSERT_EQ(static_cast<unsigned char *>(b), a + (64 << 10)) << "fresh spans are carved in address order";
  FillBytes(a, 64 << 10, 9);
  spanalloc_free(b);
  auto *q = static_cast<unsigned char *>(spanalloc_realloc(a, 300 << 10));
  EXPECT_EQ(q, a);
  EXPECT_TRUE(CheckBytes(q, 64 << 10, 9));
  EXPECT_GE(spanalloc_usable_size(q), size_t(300) << 10);
  spanalloc_free(q);
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
}

uint64_t MinorFaults() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_minflt);
}

// A large block that cannot grow in place is copied into a committed free
// span when one fits, even from kRemapBytes up: the new block's pages are
// resident already (mremap would have faulted in the new part).
TEST(Realloc, LargeGrowthCopiesIntoACommittedFreeSpan) {
  const size_t room_bytes = 4 << 20, from = kRemapBytes, to = 2 * kRemapBytes;
  auto *room = static_cast<unsigned char *>(spanalloc_malloc(room_bytes));
  void *fence1 = spanalloc_malloc(64 << 10);  // room stays a span of its own
  auto *a = static_cast<unsigned char *>(spanalloc_malloc(from));
  void *fence2 = spanalloc_malloc(64 << 10);  // a cannot grow in place
  memset(room, 7, room_bytes);
  FillBytes(a, from, 5);
  spanalloc_free(room);
  uint64_t faults = MinorFaults();
  auto *q = static_cast<unsigned char *>(spanalloc_realloc(a, to));
  ASSERT_NE(q, nullptr);
  memset(q + from, 9, to - from);
  faults = MinorFaults() - faults;
  EXPECT_TRUE(q >= room && q + to <= room + room_bytes) << "not in the committed free span";
  EXPECT_TRUE(CheckBytes(q, from, 5)) << "contents lost";
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  // (Under a sanitizer, the copy also faults in the shadow of both blocks.)
  EXPECT_LT(faults, 64u) << "the new block's pages were faulted in";
#else
  (void)faults;
#endif
  EXPECT_GE(spanalloc_usable_size(q), to);
  EXPECT_EQ(SpanOf(a)->state, SpanState::kFree) << "the old block goes back";
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
  spanalloc_free(q);
  spanalloc_free(fence1);
  spanalloc_free(fence2);
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
}

TEST(Realloc, HugeGrowthMovesPagesWithoutDoublingResidentMemory) {
  const size_t from = 48 << 20, to = 96 << 20;
  auto *p = static_cast<unsigned char *>(spanalloc_malloc(from));
  memset(p, 0x42, from);  // all resident
  size_t rss_before = ResidentKiB();
  auto *q = static_cast<unsigned char *>(spanalloc_realloc(p, to));
  ASSERT_NE(q, nullptr);
  size_t rss_after = ResidentKiB();
  for (size_t i = 0; i < from; i += 4096) ASSERT_EQ(q[i], 0x42) << i;
  // A copy would have made the new block's first 48 MiB resident while the
  // old block still was: RSS would have grown by 48 MiB.
  EXPECT_LT(rss_after, rss_before + (8 << 10)) << "realloc copied instead of moving pages";
  memset(q + from, 0x43, to - from);
  EXPECT_EQ(SpanOf(q)->state, SpanState::kLarge);
  EXPECT_EQ(SpanOf(q)->start_addr(), reinterpret_cast<uintptr_t>(q));
  spanalloc_free(q);
  EXPECT_EQ(g_page_heap.Validate(), nullptr);
  // The old range is heap memory again.
  auto *r = static_cast<unsigned char *>(spanalloc_malloc(from));
  memset(r, 1, from);
  spanalloc_free(r);
}

TEST(Calloc, ZeroesReusedSmallAndLargeBlocks) {
  for (size_t n : {size_t{24}, size_t{4000}, size_t{100000}, size_t{3} << 20}) {
    auto *p = static_cast<unsigned char *>(spanalloc_malloc(n));
    memset(p, 0xee, n);
    spanalloc_free(p);
    auto *z = static_cast<unsigned char *>(spanalloc_calloc(1, n));
    for (size_t i = 0; i < n; i++) ASSERT_EQ(z[i], 0) << "calloc(" << n << ") byte " << i;
    spanalloc_free(z);
  }
  spanalloc_release_free_memory();
  auto *z = static_cast<unsigned char *>(spanalloc_calloc(1 << 20, 4));
  for (size_t i = 0; i < (4 << 20); i += 1024) ASSERT_EQ(z[i], 0);
  spanalloc_free(z);
}

TEST(Aligned, SmallAndLargeAlignments) {
  for (size_t align = 8; align <= (size_t{1} << 22); align *= 2) {
    for (size_t n : {size_t{1}, size_t{24}, size_t{3000}, size_t{40000}}) {
      void *p = spanalloc_aligned_alloc(align, n);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align << " " << n;
      EXPECT_GE(spanalloc_usable_size(p), n);
      memset(p, 0x11, n);
      spanalloc_free(p);
    }
  }
  void *out = reinterpret_cast<void *>(0x1234);
  EXPECT_EQ(spanalloc_posix_memalign(&out, 24, 100), EINVAL);
  EXPECT_EQ(out, reinterpret_cast<void *>(0x1234));
}

}  // namespace
}  // namespace spanalloc
