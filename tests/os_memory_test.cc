#include "os_memory.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <sys/mman.h>

#include "common.h"

namespace spanalloc {
namespace {

size_t ResidentPages(void *p, size_t bytes) {
  unsigned char vec[1024];
  size_t pages = bytes / 4096;
  EXPECT_LE(pages, sizeof vec);
  EXPECT_EQ(mincore(p, bytes, vec), 0);
  size_t n = 0;
  for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
  return n;
}

TEST(OsMemory, MapIsZeroedAlignedAndLazilyResident) {
  uint64_t maps = g_os_counters.maps.load();
  void *p = OsMap(2 << 20, 2 << 20);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2 << 20), 0u);
  EXPECT_EQ(g_os_counters.maps.load(), maps + 1);
  EXPECT_EQ(ResidentPages(p, 1 << 20), 0u);
  memset(p, 0xab, 64 * 1024);
  EXPECT_GE(ResidentPages(p, 1 << 20), 16u);
  OsUnmap(p, 2 << 20);
}

TEST(OsMemory, ReleaseDropsPagesAndZeroes) {
  const size_t bytes = 1 << 20;
  char *p = static_cast<char *>(OsMap(bytes, kPageSize));
  ASSERT_NE(p, nullptr);
  memset(p, 0x5a, bytes);
  EXPECT_EQ(ResidentPages(p, bytes), bytes / 4096);
  ASSERT_TRUE(OsRelease(p, bytes));
  EXPECT_EQ(ResidentPages(p, bytes), 0u);
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(p[i], 0);
  OsUnmap(p, bytes);
}

TEST(OsMemory, RefillOfAHoleNeverReplacesAnotherMapping) {
  // Remap's refill (page_heap_impl.h): the old range of a moved block is a
  // hole another mmap of the process may take before the refill runs.
  const size_t bytes = 1 << 20;
  char *p = static_cast<char *>(OsMap(bytes, kPageSize));
  ASSERT_NE(p, nullptr);
  OsUnmap(p, bytes);
  // Free hole: refilled with zero pages.
  ASSERT_TRUE(OsMapFixed(p, bytes));
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(p[i], 0);
  OsUnmap(p, bytes);
  // Someone else's mapping (with data) landed in part of the hole.
  void *other = mmap(p + bytes / 2, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(other, p + bytes / 2);
  memset(other, 0x77, 4096);
  EXPECT_FALSE(OsMapFixed(p, bytes));
  EXPECT_EQ(static_cast<unsigned char *>(other)[0], 0x77);
  EXPECT_EQ(static_cast<unsigned char *>(other)[4095], 0x77);
  munmap(other, 4096);
}

TEST(OsMemory, FailureKeepsErrnoAndReturnsNull) {
  errno = 1234;
  EXPECT_EQ(OsMap(size_t{1} << 62, kPageSize), nullptr);
  EXPECT_EQ(errno, 1234);
}

}  // namespace
}  // namespace spanalloc
