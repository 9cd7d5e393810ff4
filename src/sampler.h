// Sampler: one mechanism that picks a few allocations for a closer look,
// with two consumers:
//   heap profiles   (heap_profile.h) -- about one allocation per
//                   SPANALLOC_PROFILE_RATE bytes allocated (a Poisson process
//                   over the bytes, as Go and tcmalloc sample), its stack
//                   recorded until it is freed;
//   guarded objects (guarded_alloc.h) -- about one allocation in
//                   SPANALLOC_GUARD_SAMPLE, placed against a guard page.
//
// The fast paths do not change by a single instruction; sampling lives in
// the slow paths, and the thread cache makes sure they are entered in time:
//
//   * Each thread has a countdown (SampleCountdown, in its ThreadCache):
//     bytes until the next profile sample and allocations until the next
//     guarded one, each drawn at random with the consumer's mean.
//   * When sampling is on, a class's fast list holds only objects already
//     charged to the countdown (pre-charged), and never so many that the
//     countdown could reach zero among them: the list runs dry where the next
//     sample falls due. Its max_length is 0, so every free reaches FreeSlow,
//     which pre-charges the freed object, or keeps it uncharged in the
//     class's stash.
//   * Every charge is for one allocation of one class. When one crosses
//     zero -- the object right after a window, a freed object -- the sample
//     belongs to that class (its stash's pending count), and the class's
//     next AllocSlow takes it. (Giving it to whatever allocation came next
//     would sample the objects that follow windows too often.)
//   * ThreadCache::AllocSlow takes a pending sample or charges the one
//     allocation it serves (SampleCountdown::Charge). A sample gets a span
//     of its own from AllocSampledSmall (state kSampled, class-map entry 0),
//     so its free reaches FreeNotSmall and FreeSampled, where the profile
//     and guard bookkeeping runs. Then AllocSlow charges a window of stashed
//     objects onto the fast list.
//   * Large allocations are charged in AllocLarge (SampleLarge); a sampled
//     large span keeps its state kLarge and carries the record.
//
// So the countdown sees the byte stream in another order, in which each
// allocation's bytes are charged once and each point falls on a charge of
// the right size; each allocation of s bytes is sampled with probability
// 1 - exp(-s / rate), which is what the profile's estimates divide by.
// Objects charged but never allocated (flushed from a cache) keep their
// charge: a sample that falls on them is lost, which biases nothing (giving
// the charge back would keep the next allocations from being sampled).
// A sample's size is the bytes it holds: its class size, or its span's bytes.
//
// Cost with sampling off: one predictable branch in AllocSlow and FreeSlow.
// With it on: every free is a call (FreeSlow), plus the stack walk and a
// span per sample.
//
// Locking: g_sample_lock (lock.h, a leaf lock like FixedAlloc's) protects the
// list of live records and the guarded objects' quarantine. A record is
// written by the allocating thread before its object is handed out, and
// freed only after it is unlinked.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"
#include "lock.h"

namespace spanalloc {

struct Span;

// What is sampled, fixed at initialisation before any thread cache exists
// (SamplerConfigure) and only read afterwards.
struct SamplerConfig {
  bool on;               // any consumer on
  uint64_t profile_rate; // mean bytes between profile samples, 0 = off
  uint64_t guard_every;  // mean allocations between guarded samples, 0 = off
};
extern SamplerConfig g_sampler;

// Which consumers a sample is for.
enum SampleKind : uint8_t { kSampleProfile = 1, kSampleGuard = 2 };

// Stack frames kept per stack (the allocator's own frames are not counted).
inline constexpr int kMaxFrames = 48;

struct SampleRecord {
  SampleRecord *next = nullptr;  // g_sample_lock: live list or quarantine
  SampleRecord *prev = nullptr;
  Span *span = nullptr;
  uintptr_t ptr = 0;  // the object
  size_t size = 0;    // bytes it holds (usable size)
  uint8_t kinds = 0;  // SampleKind bits
  bool freed = false; // guarded and freed: in quarantine, inaccessible
  uint16_t depth = 0;
  uint16_t free_depth = 0;
  uintptr_t stack[kMaxFrames] = {};       // where it was allocated
  uintptr_t free_stack[kMaxFrames] = {};  // where it was freed (guarded only)
};

// Per-thread countdowns. Both are signed so that a charge may overshoot;
// a consumer that is off keeps a countdown that never runs out.
class SampleCountdown {
 public:
  // Seeds the random draws and draws both countdowns.
  void Start(uint64_t seed);
  // Charges one allocation of `size` bytes; returns the SampleKind bits of
  // the consumers whose countdown crossed zero (those draw a new one).
  unsigned Charge(size_t size);
  // Charges up to `want` allocations of `size` bytes that must not be
  // sampled: as many as leave every countdown above zero. Returns how many.
  uint32_t Precharge(size_t size, uint32_t want);
  // Precharge(size, 1) == 1, the common case of FreeSlow, inline.
  bool PrechargeOne(size_t size) {
    if (bytes_left_ <= int64_t(size) || allocs_left_ <= 1) return false;
    bytes_left_ -= int64_t(size);
    allocs_left_--;
    return true;
  }

  int64_t bytes_left() const { return bytes_left_; }
  int64_t allocs_left() const { return allocs_left_; }

 private:
  uint64_t Next();
  int64_t DrawBytes();
  int64_t DrawAllocs();
  int64_t bytes_left_ = 0;
  int64_t allocs_left_ = 0;
  uint64_t rng_ = 0;
};

// Set while this thread runs sampler code: allocations it makes meanwhile
// (glibc's backtrace loading libgcc_s on first use) are not sampled.
extern __thread bool tls_sampler_busy __attribute__((tls_model("initial-exec")));

extern Mutex g_sample_lock;

// ---- configuration and lifetime -------------------------------------------
// Reads the options (LoadOptions first); called before the heap is marked
// ready, so thread caches are created in the right mode. Never allocates.
void SamplerConfigure();
// Warms up the stack walker, installs signal handlers and the at-exit
// profile; called once the heap works (it may allocate).
void SamplerStart();
// fork(): taken after every other lock (lock.h), released or reset after.
void SamplerForkPrepare();
void SamplerForkParent();
void SamplerForkChild();

// ---- allocation and free hooks ---------------------------------------------
// A sampled small object of class cl in a span of its own; nullptr when it
// could not be placed (the caller then allocates it normally).
SPANALLOC_SAMPLE_PATH void *AllocSampledSmall(uint32_t cl, unsigned kinds) noexcept;
// Charges large span s (just allocated) to this thread's countdown and
// records it if a profile sample falls due.
SPANALLOC_SAMPLE_PATH void SampleLarge(Span *s) noexcept;
// free() of a pointer whose span carries a sample record.
SPANALLOC_SAMPLE_PATH void FreeSampled(Span *s, void *p, const char *func) noexcept;
// malloc_usable_size(), realloc() and sized free of such a pointer;
// `freed_fault` names the fault if its object was already freed.
size_t SampledUsableSize(Span *s, const void *p, const char *func, const char *freed_fault) noexcept;

// A seed for a new thread's countdown.
uint64_t NextCountdownSeed();

// Records of live profile samples (kinds has kSampleProfile), oldest first;
// g_sample_lock held.
void LinkRecordLocked(SampleRecord *r);
void UnlinkRecordLocked(SampleRecord *r);
SampleRecord *LiveRecordsLocked();
void DeleteRecord(SampleRecord *r);

// Math without libm (libspanalloc.so needs only libc).
double SamplerLog(double x);          // natural log, x > 0
double SamplerOneMinusExpNeg(double x);  // 1 - exp(-x), x >= 0

}  // namespace spanalloc
