// Stack walks for samples never allocate (stack_trace.h), and leave the
// walker's own frames out.
#include "stack_trace.h"

#include <gtest/gtest.h>

#include <atomic>

#include "sampler.h"

// Counts the C library allocations this test binary makes (the core objects
// it links do not replace malloc). Not built under sanitizers, which own
// malloc themselves.
namespace {
std::atomic<long> g_mallocs{0};
}
extern "C" void *__libc_malloc(size_t);
extern "C" void *__libc_calloc(size_t, size_t);
extern "C" void *__libc_realloc(void *, size_t);
extern "C" void *malloc(size_t n) {
  g_mallocs.fetch_add(1);
  return __libc_malloc(n);
}
extern "C" void *calloc(size_t c, size_t n) {
  g_mallocs.fetch_add(1);
  return __libc_calloc(c, n);
}
extern "C" void *realloc(void *p, size_t n) {
  g_mallocs.fetch_add(1);
  return __libc_realloc(p, n);
}

namespace spanalloc {
namespace {

__attribute__((noinline)) int WalkFrom(int depth, uintptr_t *pcs) {
  if (depth > 0) return WalkFrom(depth - 1, pcs) + 0 * depth;
  return CollectStack(pcs, kMaxFrames);
}

TEST(StackTrace, CollectingAStackNeverAllocates) {
  StackTraceInit();  // loads the unwinder: may allocate, once
  uintptr_t pcs[kMaxFrames];
  long before = g_mallocs.load();
  int depth = 0;
  for (int i = 0; i < 2000; i++) depth = WalkFrom(i % 40, pcs);
  EXPECT_EQ(g_mallocs.load(), before) << "CollectStack called malloc";
  EXPECT_GE(depth, 3);
  // The innermost frame is WalkFrom's (this test's code, not the walker's).
  uintptr_t walk = reinterpret_cast<uintptr_t>(&WalkFrom);
  EXPECT_GT(pcs[0], walk);
  EXPECT_LT(pcs[0], walk + 2048);
  EXPECT_LE(depth, kMaxFrames);
}

}  // namespace
}  // namespace spanalloc
