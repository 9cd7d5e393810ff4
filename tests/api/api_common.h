// Shared helpers of the API-level test suites.
//
// Every suite is built twice from the same sources:
//  - linked   (SPANALLOC_API_LINKED=1): the test binary links libspanalloc.a,
//             so its malloc/new replace the C library's;
//  - preload  (SPANALLOC_API_LINKED=0): the binary links no allocator and is
//             run with LD_PRELOAD=libspanalloc.so.
// A global test environment (api_common.cc) checks, in every test process,
// that the allocator in use really is spanalloc, and fails the test otherwise.
#ifndef SPANALLOC_TESTS_API_COMMON_H
#define SPANALLOC_TESTS_API_COMMON_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "spanalloc.h"

#ifndef SPANALLOC_API_LINKED
#error "SPANALLOC_API_LINKED must be defined to 0 or 1 by the build"
#endif

// Functions glibc 2.36 does not declare (or only keeps as compat symbols).
// Weak, so that a missing definition is a test failure, not a link error.
extern "C" {
void free_sized(void *ptr, size_t size) __attribute__((weak));
void free_aligned_sized(void *ptr, size_t alignment, size_t size) __attribute__((weak));
void cfree(void *ptr) __attribute__((weak));
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
}

namespace api {

constexpr bool kLinked = SPANALLOC_API_LINKED != 0;
constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kPage = 4096;

// Keeps the compiler from eliding or folding an allocation or a free.
inline void escape(const void *p) { asm volatile("" : : "g"(p) : "memory"); }
template <class T> inline T *opaque(T *p) {
  asm volatile("" : "+r"(p));
  return p;
}
// A size the compiler cannot see through (no constant folding of malloc(SIZE_MAX)).
inline size_t opaque_size(size_t n) {
  asm volatile("" : "+r"(n));
  return n;
}

inline bool is_aligned(const void *p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }
// The alignment malloc(n) must give on x86-64 (glibc's contract: 16, or the
// largest power of two not above n for tiny sizes).
inline size_t min_malloc_alignment(size_t n) {
  size_t a = 16;
  while (a > 1 && a > n) a >>= 1;
  return a;
}

// Deterministic content derived from the block's address, size and a tag.
void fill_pattern(void *p, size_t n, uint64_t tag);
// Returns the offset of the first wrong byte, or SIZE_MAX if all are right.
size_t check_pattern(const void *p, size_t n, uint64_t tag);
// Content that does not depend on the address (survives realloc moves).
void fill_seq(void *p, size_t from, size_t to, uint64_t tag);
size_t check_seq(const void *p, size_t from, size_t to, uint64_t tag);

// Small, fast, fixed-seed random numbers.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// True when libspanalloc is mapped into this process (/proc/self/maps).
bool spanalloc_mapped();
// The object file that defines the function at `fn` (dladdr), or "".
std::string defining_object(const void *fn);
// True if `fn` is spanalloc's: in the linked build, a function of the test
// executable itself; in the preloaded build, one of libspanalloc.so.
bool provided_by_spanalloc(const void *fn);
// Index of the first non-zero byte of [p, p+n), or SIZE_MAX.
size_t first_nonzero(const void *p, size_t n);

// The functions glibc's headers lack, as the program binds them (weak
// symbol in the linked build, dlsym in the preloaded one); nullptr if missing.
using FreeSizedFn = void (*)(void *, size_t);
using FreeAlignedSizedFn = void (*)(void *, size_t, size_t);
using CfreeFn = void (*)(void *);
FreeSizedFn free_sized_fn();
FreeAlignedSizedFn free_aligned_sized_fn();
CfreeFn cfree_fn();

// Resolves a function of the malloc interface as the program sees it: in the
// linked build `linked` (the executable's own definition), in the preloaded
// build dlsym(RTLD_DEFAULT, name).
void *resolve(const char *name, void *linked);

// spanalloc_get_stats, or nullptr when not reachable (preloaded build and the
// library does not export it).
using StatsFn = int (*)(spanalloc_stats *);
StatsFn stats_fn();
// in_use_small + in_use_large, or 0 when stats_fn() is null.
uint64_t in_use_bytes();
// Resident set size of this process, from /proc/self/statm.
size_t rss_bytes();
// Virtual size of this process, from /proc/self/statm.
size_t vm_bytes();

}  // namespace api

#endif
