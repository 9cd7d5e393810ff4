#include "page_map.h"

#include <gtest/gtest.h>

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

TEST(PageMap, EnsureRejectsPagesBeyondTheAddressSpace) {
  EXPECT_FALSE(PageMapEnsure(PageId{1} << 35, 1));
}

}  // namespace
}  // namespace spanalloc
