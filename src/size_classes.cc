#include "size_classes.h"

namespace spanalloc {

// Spans start on page boundaries, so a class whose size is a multiple of
// `align` (<= kPageSize) places every object on an `align` boundary.
uint32_t SizeClassForAligned(size_t n, size_t align) {
  if (n > kMaxSmallSize || align > kPageSize) return 0;
  for (uint32_t cl = SizeClassOf(n); cl < kNumClasses; cl++)
    if (kClassShape[cl].size % align == 0) return cl;
  return 0;
}

}  // namespace spanalloc
