// OS memory: the only code in spanalloc that asks the kernel for memory or
// gives it back.
//
// Memory-state model for every page the heap owns:
//   mapped/committed -- mmap'ed read-write; may be resident (RSS) once touched.
//   released         -- still mapped, but madvise(MADV_DONTNEED) dropped its
//                       physical pages: not in RSS, reads as zero, and the next
//                       touch faults in a fresh zero page.
// Address space is never unmapped by the page heap (spans keep their page-map
// entries valid); only the metadata allocator and page-map leaves map too.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace spanalloc {

struct OsCounters {
  std::atomic<uint64_t> mapped{0};    // bytes mapped, ever (the heap never unmaps)
  std::atomic<uint64_t> maps{0};      // mmap calls that succeeded
  std::atomic<uint64_t> releases{0};  // madvise(MADV_DONTNEED) calls
  std::atomic<uint64_t> released_bytes{0};
  std::atomic<uint64_t> hugepage_advice{0};  // madvise(MADV_HUGEPAGE) calls that succeeded
};

// Transparent huge pages are 2 MiB on x86-64.
inline constexpr size_t kHugePageSize = size_t{2} << 20;
extern OsCounters g_os_counters;

// Read-write anonymous memory, zero-filled, aligned to `align` (a power of
// two, at least the OS page). Reserved lazily (MAP_NORESERVE): untouched pages
// cost no RSS. Returns nullptr when the kernel refuses.
void *OsMap(size_t bytes, size_t align);
// Asks for transparent huge pages on [p, p+bytes) (madvise(MADV_HUGEPAGE);
// p and bytes 2 MiB-aligned). False if the kernel has no THP or refused.
bool OsAdviseHugePages(void *p, size_t bytes);
// Drops the physical pages of [p, p+bytes) (released state). p and bytes must
// be multiples of the OS page size. Returns false if the kernel refused.
bool OsRelease(void *p, size_t bytes);
// Returns [p, p+bytes) to the kernel entirely (metadata chunks only).
void OsUnmap(void *p, size_t bytes);

// Moving pages instead of copying them (realloc of large blocks):
// Grows the mapping [p, p+old) to new_bytes where it stands; false if the
// address space after it is taken.
bool OsRemapInPlace(void *p, size_t old_bytes, size_t new_bytes);
// Moving a block elsewhere takes two steps, so that the caller can prepare
// the destination (its page-map leaves) before anything moves:
// OsReserve takes an inaccessible range of bytes aligned to `align` (nullptr
// on failure); OsRemapMoveTo moves the pages of [p, p+old) onto the reserved
// target, resized to new_bytes, without copying, and leaves [p, p+old)
// unmapped; false on failure (then nothing has moved and the target is still
// reserved). OsUnreserve gives back a reservation that was not used.
void *OsReserve(size_t bytes, size_t align);
bool OsRemapMoveTo(void *p, size_t old_bytes, size_t new_bytes, void *target);
void OsUnreserve(void *target, size_t bytes);
// Maps fresh zero pages exactly at [p, p+bytes) (refilling a hole) if the
// range is still free; false when anything else was mapped there meanwhile
// (never replaced) or the kernel refused memory.
bool OsMapFixed(void *p, size_t bytes);
// Maps read-write zero pages (as OsMap) at exactly [at, at+bytes) if nothing
// is mapped there. nullptr on failure, with *taken true when the range (or
// part of it) was already in use and false when the kernel refused memory.
void *OsMapAt(void *at, size_t bytes, bool *taken);

#ifdef SPANALLOC_OS_FAULT_INJECTION
// Test builds only (tests/allocator.cmake; never the shipped library): after
// `skip` more calls that would map memory (OsMap, OsMapFixed, the remaps),
// the next `fail` calls fail as if the kernel refused. OsInjectFaults(0, 0)
// turns it off. Returns how many calls failed so far.
void OsInjectFaults(uint64_t skip, uint64_t fail);
uint64_t OsInjectedFailures();
#endif
// Guard pages (guarded_alloc.cc): makes [p, p+bytes) inaccessible (any access
// faults) or read-write again. p and bytes must be multiples of the OS page
// size. Returns false if the kernel refused (e.g. at its limit of mappings,
// since each protected range splits the mapping around it).
bool OsProtect(void *p, size_t bytes, bool accessible);

}  // namespace spanalloc
