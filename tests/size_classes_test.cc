// Properties of the generated size-class table.
#include "size_classes.h"

#include <gtest/gtest.h>

namespace spanalloc {
namespace {

TEST(SizeClasses, TableIsMonotoneAndAligned) {
  ASSERT_EQ(kClassShape[0].size, 0u);
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    const ClassShape &c = kClassShape[cl];
    if (cl > 1) {
      EXPECT_GT(c.size, kClassShape[cl - 1].size) << "class " << cl;
    }
    EXPECT_EQ(c.size % 8, 0u) << "class " << cl;
    if (c.size >= 16) {
      EXPECT_EQ(c.size % kMinAlign, 0u) << "class " << cl << " breaks 16-byte alignment";
    }
    EXPECT_EQ(c.objects, c.pages * kPageSize / c.size) << "class " << cl;
    EXPECT_GE(c.objects, 1u);
    EXPECT_LE(c.objects, kMaxObjectsPerSpan);
    EXPECT_GE(c.batch, 2u);
    EXPECT_LE(c.batch, 128u);
  }
  EXPECT_EQ(kClassShape[kNumClasses - 1].size, kMaxSmallSize);
}

TEST(SizeClasses, WasteWithinStatedBound) {
  uint32_t prev = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    const ClassShape &c = kClassShape[cl];
    uint32_t smallest_request = prev + 1;
    double round = double(c.size - smallest_request) / c.size;
    if (c.size > 128) {
      EXPECT_LE(round, 0.125) << "class " << cl << " size " << c.size;
    } else {
      EXPECT_LT(c.size - smallest_request, 16u) << "class " << cl;
    }
    uint32_t span = c.pages * uint32_t(kPageSize);
    EXPECT_LE(span % c.size, span / 8) << "tail waste of class " << cl;
    prev = c.size;
  }
}

TEST(SizeClasses, LookupGivesSmallestFittingClass) {
  for (size_t n = 0; n <= kMaxSmallSize; n++) {
    uint32_t cl = SizeClassOf(n);
    ASSERT_GE(cl, 1u);
    ASSERT_LT(cl, kNumClasses);
    ASSERT_GE(ClassSize(cl), n) << n;
    if (cl > 1) {
      ASSERT_LT(ClassSize(cl - 1), n ? n : 1) << n;
    }
  }
}

TEST(SizeClasses, DivisibilityMagicMatchesModulo) {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    uint64_t span = uint64_t(kClassShape[cl].pages) * kPageSize;
    for (uint64_t off = 0; off < span; off += (off % 97 == 0 ? 1 : 13)) {
      bool divisible = off * kClassMagic[cl] < kClassMagic[cl];
      ASSERT_EQ(divisible, off % kClassShape[cl].size == 0) << "class " << cl << " off " << off;
    }
  }
}

// kClassLimit bounds the test to the span's objects: every offset of every
// class's span, the slots of its tail included.
TEST(SizeClasses, LimitAcceptsExactlyTheSpansObjects) {
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    const ClassShape &s = kClassShape[cl];
    uint64_t span = uint64_t(s.pages) * kPageSize;
    for (uint64_t off = 0; off < span; off++) {
      bool object = off % s.size == 0 && off / s.size < s.objects;
      ASSERT_EQ(off * kClassMagic[cl] < kClassLimit[cl], object) << "class " << cl << " off " << off;
    }
    // The tail's first slot, where one exists, is a multiple of the size.
    if (span - uint64_t(s.objects) * s.size >= s.size) ADD_FAILURE() << "class " << cl << " wastes a whole object";
  }
}

TEST(SizeClasses, AlignedLookup) {
  for (size_t align = 16; align <= kPageSize; align *= 2) {
    for (size_t n : {size_t{1}, size_t{17}, size_t{100}, size_t{1000}, size_t{5000}}) {
      uint32_t cl = SizeClassForAligned(n, align);
      ASSERT_NE(cl, 0u);
      EXPECT_GE(ClassSize(cl), n);
      EXPECT_EQ(ClassSize(cl) % align, 0u);
    }
  }
  EXPECT_EQ(SizeClassForAligned(100, 2 * kPageSize), 0u);
  EXPECT_EQ(SizeClassForAligned(kMaxSmallSize + 1, 16), 0u);
}

}  // namespace
}  // namespace spanalloc
