// Heap profiles: the live profile samples (sampler.h), written in the
// gperftools heap-profile text format that google-pprof and `go tool pprof`
// read:
//
//   heap profile:  <objects>: <bytes> [ 0: 0] @ heapprofile
//   <objects>: <bytes> [ 0: 0] @ 0x<pc> 0x<pc> ...     one line per stack
//
//   MAPPED_LIBRARIES:
//   <the text of /proc/self/maps, so that pprof can symbolise the pcs>
//
// Figures are estimates of the whole live heap, not sample counts: a sample
// of s bytes was taken with probability 1 - exp(-s / rate), so it stands for
// 1 / (1 - exp(-s / rate)) objects of s bytes. "heapprofile" tells both
// readers that the figures are already scaled. The allocation columns are
// 0: spanalloc keeps no totals of freed samples.
//
// Written at exit (SPANALLOC_PROFILE=PATH; "%p" in PATH becomes the process
// id), on spanalloc_dump_profile(path), and on a signal when
// SPANALLOC_PROFILE_SIGNAL names one (USR1 or USR2): the handler only counts
// the request, and the next allocation or free that reaches a sampling slow
// path writes PATH.1, PATH.2, ... Writing never allocates: the snapshot is
// copied under g_sample_lock into memory mapped for it.
#pragma once

#include <atomic>

#include "common.h"

namespace spanalloc {

// Reads SPANALLOC_PROFILE and SPANALLOC_PROFILE_SIGNAL (at initialisation,
// never allocates); true when profiling is on.
bool HeapProfileConfigure();
bool HeapProfileEnabled();
// Registers the at-exit profile and the signal handler.
void HeapProfileStart();
// Writes the profile to path; 0, or an errno value.
int WriteHeapProfile(const char *path);

extern std::atomic<int> g_profile_requests;  // signals not yet served
void ServeProfileRequests();
// Called from the sampling slow paths: writes the profile a signal asked for.
SPANALLOC_INLINE void HeapProfilePoll() {
  if (SPANALLOC_UNLIKELY(g_profile_requests.load(std::memory_order_relaxed) != 0)) ServeProfileRequests();
}

}  // namespace spanalloc
