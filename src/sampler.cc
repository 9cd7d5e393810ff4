// See sampler.h for the mechanism and its locking.
#include "sampler.h"

#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "guarded_alloc.h"
#include "heap_profile.h"
#include "metadata_alloc.h"
#include "options.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_classes.h"
#include "span.h"
#include "stack_trace.h"
#include "thread_cache.h"

namespace spanalloc {

constinit SamplerConfig g_sampler = {false, 0, 0};
__thread bool tls_sampler_busy __attribute__((tls_model("initial-exec"))) = false;
constinit Mutex g_sample_lock{LockRank::kSampler};

namespace {

// A countdown that never runs out, for a consumer that is off.
constexpr int64_t kNever = int64_t{1} << 62;

constinit FixedAlloc<SampleRecord> g_record_alloc;
SampleRecord *g_live_head = nullptr;  // g_sample_lock, oldest first
SampleRecord *g_live_tail = nullptr;

// Threads without a cache (exiting, or large allocations only) share this
// countdown, under g_sample_lock.
SampleCountdown g_shared_countdown;
bool g_shared_started = false;  // g_sample_lock
std::atomic<uint64_t> g_seed_counter{0};

class BusyScope {
 public:
  BusyScope() : was_(tls_sampler_busy) { tls_sampler_busy = true; }
  ~BusyScope() { tls_sampler_busy = was_; }

 private:
  bool was_;
};

SPANALLOC_RARE uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

SampleRecord *NewRecord() { return g_record_alloc.New(); }

}  // namespace

// ---- math without libm ------------------------------------------------------

SPANALLOC_RARE double SamplerLog(double x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z), z = (m-1)/(m+1),
  // |z| <= 0.172, so the series to z^13 is exact to ~1e-12.
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = int((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double z = (m - 1) / (m + 1), z2 = z * z;
  double series = 2.0 / 13;
  for (int k = 11; k >= 1; k -= 2) series = 2.0 / k + z2 * series;
  return e * 0.6931471805599453 + z * series;
}

SPANALLOC_RARE double SamplerOneMinusExpNeg(double x) {
  if (x < 0.5) {  // alternating series: x - x^2/2! + x^3/3! - ...
    double term = x, sum = 0;
    for (int k = 1; k <= 16; k++) {
      sum += term;
      term *= -x / (k + 1);
    }
    return sum;
  }
  if (x > 700) return 1;
  // exp(-x) = 2^-k * exp(-r), x = k ln2 + r, 0 <= r < ln2.
  int k = int(x / 0.6931471805599453);
  double r = x - k * 0.6931471805599453;
  double term = 1, e = 0;
  for (int i = 1; i <= 20; i++) {
    e += term;
    term *= -r / i;
  }
  uint64_t bits = uint64_t(1023 - k) << 52;  // 2^-k, k < 1010
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return 1 - e * scale;
}

// ---- countdowns -------------------------------------------------------------

SPANALLOC_RARE void SampleCountdown::Start(uint64_t seed) {
  rng_ = SplitMix(seed) | 1;
  bytes_left_ = DrawBytes();
  allocs_left_ = DrawAllocs();
}

uint64_t SampleCountdown::Next() {  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545f4914f6cdd1dull;
}

// Exponential with mean profile_rate: the gap to the next point of a Poisson
// process over the bytes allocated.
SPANALLOC_RARE int64_t SampleCountdown::DrawBytes() {
  if (g_sampler.profile_rate == 0) return kNever;
  double u = double((Next() >> 11) + 1) * 0x1p-53;  // (0, 1]
  double gap = -SamplerLog(u) * double(g_sampler.profile_rate);
  if (gap < 1) return 1;
  if (gap > double(kNever)) return kNever;
  return int64_t(gap);
}

// Geometric with mean guard_every (at least 1).
SPANALLOC_RARE int64_t SampleCountdown::DrawAllocs() {
  uint64_t n = g_sampler.guard_every;
  if (n == 0) return kNever;
  if (n == 1) return 1;
  double u = double((Next() >> 11) + 1) * 0x1p-53;
  double k = 1 + SamplerLog(u) / SamplerLog(1 - 1.0 / double(n));
  if (k > double(kNever)) return kNever;
  return int64_t(k);
}

SPANALLOC_RARE unsigned SampleCountdown::Charge(size_t size) {
  unsigned kinds = 0;
  bytes_left_ -= int64_t(size);
  if (bytes_left_ <= 0) {
    if (g_sampler.profile_rate != 0) kinds |= kSampleProfile;
    bytes_left_ = DrawBytes();
  }
  if (--allocs_left_ <= 0) {
    if (g_sampler.guard_every != 0) kinds |= kSampleGuard;
    allocs_left_ = DrawAllocs();
  }
  return kinds;
}

SPANALLOC_RARE uint32_t SampleCountdown::Precharge(size_t size, uint32_t want) {
  if (bytes_left_ <= int64_t(size) || allocs_left_ <= 1) return 0;
  uint64_t k = want;
  uint64_t by_bytes = uint64_t(bytes_left_ - 1) / size;
  uint64_t by_allocs = uint64_t(allocs_left_ - 1);
  if (by_bytes < k) k = by_bytes;
  if (by_allocs < k) k = by_allocs;
  bytes_left_ -= int64_t(k * size);
  allocs_left_ -= int64_t(k);
  return uint32_t(k);
}

// ---- records ----------------------------------------------------------------

SPANALLOC_RARE void LinkRecordLocked(SampleRecord *r) {
  r->next = nullptr;
  r->prev = g_live_tail;
  if (g_live_tail) g_live_tail->next = r; else g_live_head = r;
  g_live_tail = r;
}

SPANALLOC_RARE void UnlinkRecordLocked(SampleRecord *r) {
  if (r->prev) r->prev->next = r->next; else g_live_head = r->next;
  if (r->next) r->next->prev = r->prev; else g_live_tail = r->prev;
  r->next = r->prev = nullptr;
}

SampleRecord *LiveRecordsLocked() { return g_live_head; }

void DeleteRecord(SampleRecord *r) { g_record_alloc.Delete(r); }

// ---- configuration ----------------------------------------------------------

void SamplerConfigure() {
  g_sampler.profile_rate = HeapProfileConfigure() ? g_options.profile_rate_bytes : 0;
  g_sampler.guard_every = g_options.guard_sample;
  g_sampler.on = g_sampler.profile_rate != 0 || g_sampler.guard_every != 0;
}

void SamplerStart() {
  if (!g_sampler.on && !HeapProfileEnabled()) return;
  {
    BusyScope busy;
    StackTraceInit();
  }
  if (g_sampler.guard_every != 0) GuardedInit();
  HeapProfileStart();
}

SPANALLOC_RARE void SamplerForkPrepare() {
  g_sample_lock.Lock();
  g_record_alloc.lock().Lock();
}
SPANALLOC_RARE void SamplerForkParent() {
  g_record_alloc.lock().Unlock();
  g_sample_lock.Unlock();
}
SPANALLOC_RARE void SamplerForkChild() {
  g_record_alloc.lock().ResetAfterFork();
  g_sample_lock.ResetAfterFork();
}

// ---- the sampled allocations ------------------------------------------------

namespace {

// A span of its own for a profile-only sample: the object at its start.
SPANALLOC_RARE void *PlaceProfiled(SampleRecord *r, size_t size) {
  bool zeroed;
  Span *s = g_page_heap.AllocLarge(PagesFor(size), 1, &zeroed);
  if (s == nullptr) return nullptr;
  s->state = SpanState::kSampled;
  r->span = s;
  r->ptr = s->start_addr();
  return reinterpret_cast<void *>(r->ptr);
}

SPANALLOC_RARE void Register(SampleRecord *r) {
  MutexLock l(g_sample_lock);
  LinkRecordLocked(r);
}

}  // namespace

SPANALLOC_NOINLINE void *AllocSampledSmall(uint32_t cl, unsigned kinds) noexcept {
  BusyScope busy;
  int saved = errno;
  size_t size = ClassSize(cl);
  void *p = nullptr;
  SampleRecord *r = NewRecord();
  if (r != nullptr) {
    r->size = size;
    r->depth = uint16_t(CollectStack(r->stack, kMaxFrames));
    if (kinds & kSampleGuard) p = PlaceGuarded(r, size);  // nullptr: pool full
    if (p == nullptr) {
      kinds &= ~unsigned{kSampleGuard};
      if (kinds != 0) p = PlaceProfiled(r, size);
    }
    if (p == nullptr) {
      DeleteRecord(r);
    } else {
      r->kinds = uint8_t(kinds);
      r->span->sample = r;
      if (kinds & kSampleProfile) Register(r);
    }
  }
  errno = saved;
  return p;
}

SPANALLOC_NOINLINE void SampleLarge(Span *s) noexcept {
  if (g_sampler.profile_rate == 0 || tls_sampler_busy) return;
  unsigned kinds;
  ThreadCache *tc = tls_cache;
  if (tc != &g_empty_cache) {
    kinds = tc->countdown().Charge(s->bytes());
  } else {
    MutexLock l(g_sample_lock);
    if (!g_shared_started) {
      g_shared_countdown.Start(uint64_t(reinterpret_cast<uintptr_t>(&g_shared_countdown)) ^ NowMillis());
      g_shared_started = true;
    }
    kinds = g_shared_countdown.Charge(s->bytes());
  }
  if ((kinds & kSampleProfile) == 0) return;
  BusyScope busy;
  int saved = errno;
  SampleRecord *r = NewRecord();
  if (r != nullptr) {
    r->size = s->bytes();
    r->depth = uint16_t(CollectStack(r->stack, kMaxFrames));
    r->kinds = kSampleProfile;
    r->span = s;
    r->ptr = s->start_addr();
    s->sample = r;
    Register(r);
  }
  errno = saved;
}

SPANALLOC_RARE uint64_t NextCountdownSeed() {
  return g_seed_counter.fetch_add(1, std::memory_order_relaxed) * 0x9e3779b97f4a7c15ull ^ NowMillis();
}

void FreeSampled(Span *s, void *p, const char *func) noexcept {
  SampleRecord *r = s->sample;
  if (r->kinds & kSampleGuard) return FreeGuarded(s, r, p, func);
  if (reinterpret_cast<uintptr_t>(p) != r->ptr) FatalMisuse(func, p, "invalid pointer", "not the start of an object");
  int saved = errno;
  {
    MutexLock l(g_sample_lock);
    UnlinkRecordLocked(r);
  }
  s->sample = nullptr;
  if (s->state == SpanState::kSampled) s->state = SpanState::kLarge;
  DeleteRecord(r);
  g_page_heap.Free(s);
  errno = saved;
}

SPANALLOC_RARE size_t SampledUsableSize(Span *s, const void *p, const char *func, const char *freed_fault) noexcept {
  SampleRecord *r = s->sample;
  if (r->freed) ReportGuardedMisuse(r, func, freed_fault);
  if (reinterpret_cast<uintptr_t>(p) != r->ptr) FatalMisuse(func, p, "invalid pointer", "not the start of an object");
  return r->size;
}

}  // namespace spanalloc
