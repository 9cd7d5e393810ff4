// Stack traces for samples, collected without allocating.
//
// The walk is glibc's backtrace() (libgcc's unwinder, driven by the unwind
// tables every x86-64 object carries). Its first call loads libgcc_s, which
// allocates: StackTraceInit makes that call at start-up, under the sampler's
// recursion guard, so that later walks never allocate (a test checks this).
// libspanalloc.so itself still needs only libc: libgcc_s is loaded at run
// time, and only when sampling is on.
#pragma once

#include <cstdint>

#include "common.h"

namespace spanalloc {

// Loads the unwinder and finds the allocator's own code (see CollectStack).
// Call with tls_sampler_busy set: it may allocate.
void StackTraceInit();

// Writes the return addresses of the calling thread's stack, innermost
// first, into pcs (at most max), leaving out the allocator's own frames:
// when the allocator is a shared object (LD_PRELOAD), every frame inside it;
// when it is linked into the program, those of the functions marked
// SPANALLOC_SAMPLE_PATH (common.h). An entry point that does not end in a
// tail call (posix_memalign, operator new) may stay as the innermost frame:
// pprof drops those names itself. Returns the count.
SPANALLOC_SAMPLE_PATH int CollectStack(uintptr_t *pcs, int max);

// Writes one line per frame ("    #3 0x... module(symbol+0x12)") to fd.
// Async-signal-safe as far as glibc's backtrace_symbols_fd is.
void PrintStack(int fd, const uintptr_t *pcs, int depth);

}  // namespace spanalloc
