#include "page_map.h"

#include <cstdio>

#include <gtest/gtest.h>

#include "allocator.h"
#include "os_memory.h"

namespace spanalloc {
namespace {

TEST(PageMap, AbsentPagesReadAsNothing) {
  int local = 0;
  EXPECT_EQ(ClassEntry(&local), 0u);
  EXPECT_EQ(SpanOf(&local), nullptr);
  EXPECT_EQ(ClassEntry(nullptr), 0u);
  EXPECT_EQ(SpanOf(reinterpret_cast<void *>(~uintptr_t{0})), nullptr);
  // Pointers past the 48-bit space never map to a span.
  EXPECT_EQ(SpanOfPage(PageId{1} << 40), nullptr);
}

TEST(PageMap, SetAndReadBack) {
  void *mem = OsMap(4 * kPageSize, kPageSize);
  ASSERT_NE(mem, nullptr);
  PageId first = PageOf(mem);
  ASSERT_TRUE(PageMapEnsure(first, 4));
  Span span;
  span.start = first;
  span.npages = 4;
  for (PageId p = first; p < first + 4; p++) {
    PageMapSetSpan(p, &span);
    PageMapSetClass(p, MakeClassEntry(span.start_addr(), 7));
  }
  char *base = static_cast<char *>(mem);
  for (size_t off = 0; off < 4 * kPageSize; off += 1000) {
    EXPECT_EQ(SpanOf(base + off), &span);
    EXPECT_EQ(ClassEntry(base + off), MakeClassEntry(span.start_addr(), 7));
  }
  EXPECT_NE(SpanOf(base + 4 * kPageSize), &span);
  for (PageId p = first; p < first + 4; p++) {
    PageMapSetSpan(p, nullptr);
    PageMapSetClass(p, 0);
  }
  EXPECT_EQ(ClassEntry(base), 0u);
  EXPECT_EQ(SpanOf(base), nullptr);
  OsUnmap(mem, 4 * kPageSize);
}

// The flat view (page_map.h) exists before the heap's first mapping, and the
// heap's memory lands in it, so that free() takes its short path. (Under
// AddressSanitizer its shadow takes the range: there is no flat view.)
TEST(PageMap, HeapMemoryIsInTheFlatView) {
  void *small = Alloc(64), *medium = Alloc(20000);
  ASSERT_NE(small, nullptr);
  ASSERT_NE(medium, nullptr);
#if defined(__SANITIZE_ADDRESS__)
  fprintf(stderr, "AddressSanitizer: its shadow takes the flat view's range; checked: lookups agree\n");
#else
  ASSERT_GT(g_flat_pages, (uintptr_t{8} << 30) >> kPageShift) << "no flat view (its address, 768 MiB, taken?)";
  EXPECT_LT(reinterpret_cast<uintptr_t>(small) >> kPageShift, g_flat_pages);
  EXPECT_LT(reinterpret_cast<uintptr_t>(medium) >> kPageShift, g_flat_pages);
  EXPECT_GE(reinterpret_cast<uintptr_t>(small), kFlatHeapStart);
#endif
  // Through the flat view or the root: the same entry.
  for (void *p : {small, medium}) EXPECT_EQ(ClassEntry(p), RootClassEntry(p));
  EXPECT_NE(EntryClass(ClassEntry(small)), 0u);
  Free(small);
  Free(medium);
}

TEST(PageMap, EnsureRejectsPagesBeyondTheAddressSpace) {
  EXPECT_FALSE(PageMapEnsure(PageId{1} << 35, 1));
}

}  // namespace
}  // namespace spanalloc
