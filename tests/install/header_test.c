/* include/spanalloc.h: the version macros come from CMake's project version
 * (EXPECT_* are passed by tests/install/CMakeLists.txt), the library reports
 * the same, and the allocation functions carry the attributes the compiler
 * uses: alloc_size (object sizes known), alloc_align (alignment known). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "spanalloc.h"

#if SPANALLOC_VERSION_MAJOR != EXPECT_MAJOR || SPANALLOC_VERSION_MINOR != EXPECT_MINOR || \
    SPANALLOC_VERSION_PATCH != EXPECT_PATCH
#error "spanalloc_version.h does not match the project version"
#endif

static int failed;
#define CHECK(cond)                                        \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "header_test: failed: %s\n", #cond); \
      failed = 1;                                          \
    }                                                      \
  } while (0)

/* Sizes the optimiser cannot see through, so that only the attributes can
 * tell it the object sizes below. */
static volatile size_t v40 = 40, v3 = 3, v7 = 7, v200 = 200, v100 = 100;

int main(void) {
  CHECK(spanalloc_version() == SPANALLOC_VERSION);
  CHECK(SPANALLOC_VERSION == EXPECT_MAJOR * 10000 + EXPECT_MINOR * 100 + EXPECT_PATCH);
  size_t n40 = v40, n3 = v3, n7 = v7, n200 = v200, n100 = v100;
  void *p = spanalloc_malloc(n40);
  CHECK(__builtin_dynamic_object_size(p, 0) == 40);
  void *q = spanalloc_calloc(n3, n7);
  CHECK(__builtin_dynamic_object_size(q, 0) == 21);
  void *r = spanalloc_aligned_alloc(64, n200);
  CHECK(__builtin_dynamic_object_size(r, 0) == 200);
  /* alloc_align: the compiler knows r % 64 == 0 without looking. */
  CHECK(__builtin_constant_p((uintptr_t)r % 64) && (uintptr_t)r % 64 == 0);
  p = spanalloc_realloc(p, n100);
  CHECK(__builtin_dynamic_object_size(p, 0) == 100);
  spanalloc_free(p);
  spanalloc_free(q);
  spanalloc_free(r);
  if (!failed) printf("header_test: version %d, attributes seen by the compiler\n", spanalloc_version());
  return failed;
}
