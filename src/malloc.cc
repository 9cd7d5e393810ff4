// The C malloc family, exported under the names glibc uses, so that linking
// libspanalloc.a or preloading libspanalloc.so replaces the system allocator
// for the whole process (see glibc's "Replacing malloc").
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "allocator.h"
#include "options.h"
#include "report.h"
#include "spanalloc.h"

using namespace spanalloc;

namespace {
inline bool IsPowerOfTwo(size_t a) { return a != 0 && (a & (a - 1)) == 0; }
size_t OsPageSize() {
  static size_t page = 0;
  if (page == 0) page = size_t(getpagesize());
  return page;
}
}  // namespace

extern "C" {

SPANALLOC_EXPORT void *malloc(size_t n) noexcept { return Alloc(n); }

SPANALLOC_EXPORT void free(void *p) noexcept { Free(p); }

SPANALLOC_EXPORT void cfree(void *p) noexcept { Free(p, "cfree"); }

SPANALLOC_EXPORT void *calloc(size_t count, size_t size) noexcept { return Calloc(count, size); }

SPANALLOC_EXPORT void *realloc(void *p, size_t n) noexcept { return Realloc(p, n); }

SPANALLOC_EXPORT void *reallocarray(void *p, size_t count, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return FailNoMemory();
  return Realloc(p, total);
}

SPANALLOC_EXPORT int posix_memalign(void **out, size_t align, size_t n) noexcept {
  if (align % sizeof(void *) != 0 || !IsPowerOfTwo(align)) return EINVAL;
  int saved = errno;
  void *p = AllocAligned(align, n);
  if (p == nullptr) {
    errno = saved;  // posix_memalign reports through its result, not errno
    return ENOMEM;
  }
  *out = p;
  return 0;
}

SPANALLOC_EXPORT void *aligned_alloc(size_t align, size_t n) noexcept {
  if (!IsPowerOfTwo(align)) {
    errno = EINVAL;
    return nullptr;
  }
  return AllocAligned(align, n);
}

SPANALLOC_EXPORT void *memalign(size_t align, size_t n) noexcept {
  if (align == 0) return Alloc(n);
  if (!IsPowerOfTwo(align)) {
    errno = EINVAL;
    return nullptr;
  }
  return AllocAligned(align, n);
}

SPANALLOC_EXPORT void *valloc(size_t n) noexcept { return AllocAligned(OsPageSize(), n); }

SPANALLOC_EXPORT void *pvalloc(size_t n) noexcept {
  size_t page = OsPageSize();
  size_t rounded;
  if (__builtin_add_overflow(n, page - 1, &rounded)) return FailNoMemory();
  rounded &= ~(page - 1);
  return AllocAligned(page, rounded ? rounded : page);
}

SPANALLOC_EXPORT size_t malloc_usable_size(void *p) noexcept { return UsableSize(p, "malloc_usable_size"); }

SPANALLOC_NOINLINE SPANALLOC_SAMPLE_PATH static void FreeSizedSlow(void *p, size_t n) {
  int saved = errno;
  FreeSized(p, n);
  errno = saved;
}

SPANALLOC_EXPORT void free_sized(void *p, size_t n) noexcept {
  FreeSized1K(p, n, "free_sized", [=] { FreeSizedSlow(p, n); });
}

SPANALLOC_EXPORT void free_aligned_sized(void *p, size_t align, size_t n) noexcept {
  int saved = errno;
  if (p != nullptr && (!IsPowerOfTwo(align) || (reinterpret_cast<uintptr_t>(p) & (align - 1)) != 0))
    FatalMisuse("free_aligned_sized", p, "alignment mismatch", "alignment does not match the block");
  FreeSized(p, n, align, "free_aligned_sized");
  errno = saved;
}

SPANALLOC_RARE SPANALLOC_EXPORT int malloc_trim(size_t) noexcept { return spanalloc_release_free_memory() > 0; }

SPANALLOC_RARE SPANALLOC_EXPORT void malloc_stats(void) noexcept {
  EnsureInitialized();
  PrintReport(STDERR_FILENO);
}

// glibc's XML (see report.h); glibc accepts no options yet and answers any
// with EINVAL, as its return value.
SPANALLOC_RARE SPANALLOC_EXPORT int malloc_info(int options, FILE *fp) noexcept {
  if (options != 0) return EINVAL;
  EnsureInitialized();
  return PrintMallocInfo(fp);
}

// glibc's tunables with a spanalloc meaning: M_TRIM_THRESHOLD and M_TOP_PAD
// set the free memory the page heap retains past the release delay
// (threshold + pad; a negative threshold: none is released on the delay).
// They return 1 (honoured); every other parameter has no spanalloc
// meaning and returns 0, as glibc does for an unknown one. The options
// proper are SPANALLOC_* environment variables (options.h).
SPANALLOC_RARE SPANALLOC_EXPORT int mallopt(int param, int value) noexcept {
  EnsureInitialized();
  switch (param) {
    case M_TRIM_THRESHOLD: return SetGlibcTunable(GlibcTunable::kTrimThreshold, value) ? 1 : 0;
    case M_TOP_PAD: return SetGlibcTunable(GlibcTunable::kTopPad, value) ? 1 : 0;
    default: return 0;
  }
}

SPANALLOC_RARE SPANALLOC_EXPORT struct mallinfo2 mallinfo2(void) noexcept {
  spanalloc_stats s;
  spanalloc_get_stats(&s);
  struct mallinfo2 mi = {};
  mi.arena = s.committed;
  mi.hblkhd = s.in_use_large;
  mi.uordblks = s.in_use_small + s.in_use_large;
  mi.fordblks = s.page_heap_free + s.central_free + s.thread_cache_free;
  mi.keepcost = s.page_heap_free;
  return mi;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
SPANALLOC_RARE SPANALLOC_EXPORT struct mallinfo mallinfo(void) noexcept {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo mi = {};
  auto clamp = [](size_t v) { return int(v > 0x7fffffff ? 0x7fffffff : v); };
  mi.arena = clamp(m2.arena);
  mi.hblkhd = clamp(m2.hblkhd);
  mi.uordblks = clamp(m2.uordblks);
  mi.fordblks = clamp(m2.fordblks);
  mi.keepcost = clamp(m2.keepcost);
  return mi;
}
#pragma GCC diagnostic pop

// glibc's internal names, used by some programs and by libc itself.
SPANALLOC_EXPORT void *__libc_malloc(size_t n) noexcept { return Alloc(n); }
SPANALLOC_EXPORT void __libc_free(void *p) noexcept { Free(p); }
SPANALLOC_EXPORT void *__libc_calloc(size_t c, size_t n) noexcept { return Calloc(c, n); }
SPANALLOC_EXPORT void *__libc_realloc(void *p, size_t n) noexcept { return Realloc(p, n); }
SPANALLOC_EXPORT void *__libc_memalign(size_t a, size_t n) noexcept { return memalign(a, n); }
SPANALLOC_EXPORT void *__libc_valloc(size_t n) noexcept { return valloc(n); }
SPANALLOC_EXPORT void *__libc_pvalloc(size_t n) noexcept { return pvalloc(n); }
SPANALLOC_EXPORT int __posix_memalign(void **out, size_t a, size_t n) noexcept { return posix_memalign(out, a, n); }

}  // extern "C"
