// Constants, compiler hints and the fatal-error reporter shared by every layer.
#pragma once

#include <cstddef>
#include <cstdint>

#define SPANALLOC_LIKELY(x) __builtin_expect(!!(x), 1)
#define SPANALLOC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SPANALLOC_INLINE inline __attribute__((always_inline))
#define SPANALLOC_NOINLINE __attribute__((noinline))
// Code a typical program never runs: reports, heap profiles and sampling,
// guarded allocations, stack traces, statistics printing, misuse reports,
// fork repair, option warnings. The kernel maps a library's pages 64 KiB at
// a time around each page a process first touches (fault-around), so rare
// code mixed in with the code every program runs (start-up, malloc and free,
// the caches, central lists, page heap, OS memory) is resident in every
// process that loads spanalloc. It goes to one section that src/layout.ld
// makes a mapping of its own in libspanalloc.so, which stays unmapped until
// a process runs rare code. Mark the definition (the declaration may stay
// plain) of a function a program reaches only by asking for something
// unusual or by misusing the heap; never one that every run executes, which
// would map the rare code into every process (tests/layout_test.cc checks
// that a small program maps none of it).
#define SPANALLOC_RARE __attribute__((section("spanalloc_rare")))
// Zero-initialised data that only rare code touches (large buffers): placed
// by layout.ld after the rest of the library's zero-initialised data, so that
// it does not spread the variables every program touches over more pages.
#define SPANALLOC_RARE_DATA __attribute__((section(".bss.spanalloc_rare")))
// Out of line, optimised for size, and rare (above).
#define SPANALLOC_COLD __attribute__((noinline, cold)) SPANALLOC_RARE
#define SPANALLOC_EXPORT __attribute__((visibility("default")))
// Out-of-line functions that can be on the stack between an entry point
// (malloc, free, ...) and a sample's stack walk: kept in one section, so the
// walk can leave them out of the sample's stacks when spanalloc is linked
// into the program (stack_trace.h).
#define SPANALLOC_SAMPLE_PATH __attribute__((section("spanalloc_sample_path")))

// Debug-build checks of preconditions (lock held, span state); compiled out
// of release builds.
#ifdef NDEBUG
#define SPANALLOC_DCHECK(cond) ((void)0)
#else
#define SPANALLOC_DCHECK(cond) \
  ((cond) ? (void)0 : ::spanalloc::FatalInternal("check failed: " #cond " at " __FILE__))
#endif

namespace spanalloc {

// Pages of the page heap: 8 KiB, as in Go and tcmalloc.
inline constexpr int kPageShift = 13;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;
// The OS's page (x86-64): the unit of RSS, madvise and protection; a page
// of the page heap is two of them.
inline constexpr uintptr_t kOsPage = 4096;
// Largest size served from size classes; larger requests are whole spans.
inline constexpr size_t kMaxSmallSize = 32768;
// Every block of at least 16 bytes is 16-byte aligned (any object that fits
// may need it); 8-byte blocks are 8-byte aligned, all an 8-byte object needs.
inline constexpr size_t kMinAlign = 16;
// Requests above this fail with ENOMEM before any arithmetic can overflow.
inline constexpr size_t kMaxRequest = size_t{1} << 46;

// A page number (address >> kPageShift) and a length in pages.
using PageId = uintptr_t;
using Length = uintptr_t;

inline PageId PageOf(const void *p) { return reinterpret_cast<uintptr_t>(p) >> kPageShift; }
inline void *PageAddr(PageId page) { return reinterpret_cast<void *>(page << kPageShift); }
inline constexpr Length PagesFor(size_t bytes) { return (bytes + kPageSize - 1) >> kPageShift; }

// Misuse and unrecoverable states: one line on stderr, then abort().
// Never allocates. A misuse reads
//   spanalloc: <fault> of <ptr> (<func>: [<block_size>-byte block, ]<detail>[ <given>])
// e.g. "spanalloc: double free of 0x7f3a1c012340 (free: 48-byte block, already
// on this thread's free list)"; block_size is left out when 0, given when
// kNoValue, detail when null.
inline constexpr size_t kNoValue = ~size_t{0};
[[noreturn]] void FatalMisuse(const char *func, const void *ptr, const char *fault, const char *detail = nullptr,
                              size_t block_size = 0, size_t given = kNoValue) noexcept;
[[noreturn]] void FatalInternal(const char *what) noexcept;
// Sets errno to ENOMEM and returns nullptr: every allocation that fails.
SPANALLOC_COLD void *FailNoMemory() noexcept;
// Writes a message to stderr without allocating.
void WriteStderr(const char *msg);

}  // namespace spanalloc
