/* spanalloc public C API.
 *
 * Linking libspanalloc.a (or preloading libspanalloc.so) replaces the whole
 * malloc family and every C++ operator new/delete. The spanalloc_* functions
 * below are the same allocator under names that never clash with the C
 * library, plus what the standard interface cannot express: statistics,
 * a readable report, and an explicit release of free memory to the OS. */
#ifndef SPANALLOC_H
#define SPANALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "spanalloc_version.h"

/* Attributes that tell the compiler what the allocation functions do, where
 * GCC or Clang has them: the result aliases nothing (malloc), its size and
 * alignment come from these arguments (alloc_size, alloc_align), and
 * dropping it is a leak (warn_unused_result). */
#if defined(__has_attribute)
#define SPANALLOC_HAS_ATTRIBUTE_(x) __has_attribute(x)
#else
#define SPANALLOC_HAS_ATTRIBUTE_(x) 0
#endif
#if SPANALLOC_HAS_ATTRIBUTE_(malloc)
#define SPANALLOC_MALLOC_ATTR __attribute__((malloc))
#else
#define SPANALLOC_MALLOC_ATTR
#endif
#if SPANALLOC_HAS_ATTRIBUTE_(alloc_size)
#define SPANALLOC_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#define SPANALLOC_ALLOC_SIZE(...)
#endif
#if SPANALLOC_HAS_ATTRIBUTE_(alloc_align)
#define SPANALLOC_ALLOC_ALIGN(n) __attribute__((alloc_align(n)))
#else
#define SPANALLOC_ALLOC_ALIGN(n)
#endif
#if SPANALLOC_HAS_ATTRIBUTE_(warn_unused_result)
#define SPANALLOC_NODISCARD __attribute__((warn_unused_result))
#else
#define SPANALLOC_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, SPANALLOC_VERSION of the build it came from: a
 * program can compare it with the SPANALLOC_VERSION it was compiled with. */
int spanalloc_version(void);

SPANALLOC_NODISCARD SPANALLOC_MALLOC_ATTR SPANALLOC_ALLOC_SIZE(1) void *spanalloc_malloc(size_t size);
void spanalloc_free(void *ptr);
SPANALLOC_NODISCARD SPANALLOC_MALLOC_ATTR SPANALLOC_ALLOC_SIZE(1, 2) void *spanalloc_calloc(size_t count, size_t size);
/* Not marked malloc: the result may be ptr itself. */
SPANALLOC_NODISCARD SPANALLOC_ALLOC_SIZE(2) void *spanalloc_realloc(void *ptr, size_t size);
SPANALLOC_NODISCARD SPANALLOC_MALLOC_ATTR SPANALLOC_ALLOC_SIZE(2)
    SPANALLOC_ALLOC_ALIGN(1) void *spanalloc_aligned_alloc(size_t alignment, size_t size);
SPANALLOC_NODISCARD int spanalloc_posix_memalign(void **out, size_t alignment, size_t size);
void spanalloc_free_sized(void *ptr, size_t size);
size_t spanalloc_usable_size(const void *ptr);

/* Whole-process figures, in bytes unless named otherwise. When no other
 * thread allocates meanwhile: mapped = in_use_small + in_use_large +
 * thread_cache_free + central_free + page_heap_free + released + metadata. */
typedef struct spanalloc_stats {
  uint64_t mapped;            /* address space taken from the OS */
  uint64_t committed;         /* mapped minus what was released with madvise */
  uint64_t released;          /* free page-heap bytes given back to the OS */
  uint64_t page_heap_free;    /* free, committed bytes in the page heap */
  uint64_t central_free;      /* free objects held in central lists and spans */
  uint64_t thread_cache_free; /* free objects held in thread caches (others' at their last flush) and per-CPU caches */
  uint64_t in_use_small;      /* bytes of small objects handed out (class sizes, span tails) */
  uint64_t in_use_large;      /* bytes of large spans handed out (whole pages) */
  uint64_t metadata;          /* the allocator's own structures */
  uint64_t thread_caches;     /* live thread caches (SPANALLOC_CACHE=cpu: plus one per CPU) */
  uint64_t os_maps;           /* mmap calls made */
  uint64_t os_releases;       /* madvise(MADV_DONTNEED) calls made */
} spanalloc_stats;

/* Fills *out; returns 0. Cheap enough to call from a monitoring thread. */
int spanalloc_get_stats(spanalloc_stats *out);
/* Writes a human-readable report (totals and per size class) to fd. */
void spanalloc_print_report(int fd);
/* Writes the same report as one JSON object to fd: "version", "pid",
 * "totals" (the fields of spanalloc_stats), "options" (each SPANALLOC_*
 * option in effect) and "classes" (one object per size class in use). */
void spanalloc_print_report_json(int fd);
/* Gives every free page in the page heap back to the OS; returns bytes released. */
size_t spanalloc_release_free_memory(void);
/* Writes a heap profile of the live sampled allocations (gperftools text
 * format, read by google-pprof and go tool pprof) to path. Samples are taken
 * only while SPANALLOC_PROFILE is set. Returns 0, or an errno value. */
int spanalloc_dump_profile(const char *path);

#ifdef __cplusplus
}
#endif
#endif
