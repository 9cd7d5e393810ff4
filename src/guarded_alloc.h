// Guarded objects (the idea of GWP-ASan): with SPANALLOC_GUARD_SAMPLE=N,
// about one allocation in N (sampler.h picks them) gets a span of its own:
//
//   [ lead guard ...... | object's OS pages ..... object | trail guard page ]
//
// The guards are PROT_NONE; the object's OS pages (4 KiB) are the only
// accessible ones, and at least one whole OS page of lead guard precedes
// them. The object ends exactly at the trail guard, which starts on a page
// of the page heap (8 KiB): its class size is a multiple of the alignment it
// promises (16 B, or what aligned_alloc asked for), so the object keeps it.
// A read or write past its end faults at once; one before its start faults
// once it leaves the object's first OS page. When the object is freed, its
// pages become PROT_NONE too and the span waits in a FIFO quarantine of
// kQuarantine objects, so a use after free faults; a second free is reported.
//
// The SIGSEGV handler (installed at start-up, chained to the handler it
// replaced) reports a fault inside a guarded span -- overflow, underflow or
// use after free, the object's size, the stacks where it was allocated and
// freed -- and aborts; any other fault goes to the previous handler. It only
// reads the page map and the record and writes with write(2).
//
// Bounds: at most kMaxGuarded guarded objects exist at once (live plus
// quarantined); a sample that finds none free stays an ordinary object. Each
// splits its mapping into a few kernel mappings (VMAs), well below the
// kernel's default limit of 65530. Guard state is under g_sample_lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sampler.h"

namespace spanalloc {

inline constexpr uint32_t kMaxGuarded = 1024;
inline constexpr uint32_t kQuarantine = 256;

struct GuardStats {
  uint64_t placed;    // guarded objects handed out so far
  uint64_t skipped;   // samples left unguarded because all slots were taken
  uint64_t live;      // guarded objects not yet freed
  uint64_t quarantined;
};

// Installs the SIGSEGV handler.
void GuardedInit();
// Places r's object (size bytes) in a guarded span; sets r->span and r->ptr.
// nullptr when every slot is taken or the kernel refused.
void *PlaceGuarded(SampleRecord *r, size_t size) noexcept;
// free() of a guarded object: a double free or an interior pointer is
// reported; otherwise the object becomes inaccessible and is quarantined.
SPANALLOC_SAMPLE_PATH void FreeGuarded(Span *s, SampleRecord *r, void *p, const char *func) noexcept;
// An API call (func) on a guarded object that was already freed; `fault`
// names it ("use after free", "double free").
[[noreturn]] void ReportGuardedMisuse(SampleRecord *r, const char *func, const char *fault) noexcept;
GuardStats GetGuardStats();

}  // namespace spanalloc
