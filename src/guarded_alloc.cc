// See guarded_alloc.h for the layout, the quarantine and the bounds.
#include "guarded_alloc.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "fd_writer.h"
#include "os_memory.h"
#include "page_heap.h"
#include "page_map.h"
#include "span.h"
#include "stack_trace.h"

namespace spanalloc {

namespace {

// Protected by g_sample_lock:
uint32_t g_guarded = 0;  // live + quarantined
uint64_t g_placed = 0, g_skipped = 0;
SampleRecord *g_quarantine_head = nullptr;  // oldest first
SampleRecord *g_quarantine_tail = nullptr;
uint32_t g_quarantined = 0;

SPANALLOC_RARE_DATA struct sigaction g_previous_segv;  // written once by GuardedInit
bool g_enabled = false;

// Span pages for an object of `size` bytes: the object's OS pages plus one
// OS page of lead guard, rounded up to whole pages, and one trail page.
SPANALLOC_RARE Length GuardedPages(size_t size) {
  size_t object_pages = (size + kOsPage - 1) & ~(kOsPage - 1);
  return PagesFor(object_pages + kOsPage) + 1;
}

uintptr_t DataEnd(const Span *s) { return s->end_addr() - kPageSize; }

// The span goes back to the page heap, readable again, unless the kernel
// refuses: then it is kept out of use for good (never handed out half
// protected).
SPANALLOC_RARE void ReleaseGuardedSpan(Span *s) {
  __atomic_store_n(&s->sample, nullptr, __ATOMIC_RELEASE);
  s->state = SpanState::kLarge;
  if (OsProtect(reinterpret_cast<void *>(s->start_addr()), s->bytes(), true)) g_page_heap.Free(s);
}

SPANALLOC_RARE const char *FaultKind(const SampleRecord *r, uintptr_t a) {
  if (r->freed) return "use after free";
  return a < r->ptr ? "underflow" : "overflow";
}

SPANALLOC_RARE void WriteStacks(int fd, const SampleRecord *r) {
  {
    FdWriter w(fd);
    w.Str("  allocated at:\n");
  }
  PrintStack(fd, r->stack, r->depth);
  if (r->freed) {
    {
      FdWriter w(fd);
      w.Str("  freed at:\n");
    }
    PrintStack(fd, r->free_stack, r->free_depth);
  }
}

// The project's misuse line (common.h), then the stacks:
//   spanalloc: <fault> of <ptr> (<func>: <size>-byte block, <detail>; guarded sample)
SPANALLOC_RARE void WriteHead(FdWriter &w, const char *fault, const SampleRecord *r, const char *func) {
  w.Str("spanalloc: ").Str(fault).Str(" of ").Hex(r->ptr).Str(" (").Str(func).Str(": ").Dec(r->size);
  w.Str("-byte block, ");
}

[[noreturn]] SPANALLOC_RARE void ReportFault(const SampleRecord *r, uintptr_t a) {
  {
    FdWriter w(STDERR_FILENO);
    w.Str("spanalloc: ").Str(FaultKind(r, a)).Str(" of ").Hex(r->ptr).Str(" (access at ").Hex(a).Str(": ");
    w.Dec(r->size).Str("-byte block, ");
    uint64_t d = a < r->ptr ? r->ptr - a : a >= r->ptr + r->size ? a - (r->ptr + r->size) : a - r->ptr;
    w.Dec(d).Str(d == 1 ? " byte " : " bytes ");
    w.Str(a < r->ptr ? "before its start" : a >= r->ptr + r->size ? "past its end" : "into it");
    w.Str(r->freed ? ", freed; guarded sample)\n" : "; guarded sample)\n");
  }
  WriteStacks(STDERR_FILENO, r);
  abort();
}

SPANALLOC_RARE void ChainToPrevious(int sig, siginfo_t *info, void *ctx) {
  const struct sigaction &prev = g_previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, ctx);
    return;
  }
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: restore it and let the fault happen again (or, for a
  // signal sent by someone, send it again).
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  if (info->si_code <= 0) raise(sig);
}

SPANALLOC_RARE void OnSegv(int sig, siginfo_t *info, void *ctx) {
  int saved = errno;
  uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  if (info->si_code > 0) {  // a fault, not a kill()
    Span *s = SpanOf(info->si_addr);
    SampleRecord *r = s != nullptr ? __atomic_load_n(&s->sample, __ATOMIC_ACQUIRE) : nullptr;
    if (r != nullptr && (r->kinds & kSampleGuard) && r->span == s && s->contains(info->si_addr)) ReportFault(r, a);
  }
  errno = saved;
  ChainToPrevious(sig, info, ctx);
}

}  // namespace

SPANALLOC_RARE void GuardedInit() {
  if (sysconf(_SC_PAGESIZE) != long(kOsPage)) {
    WriteStderr("spanalloc: SPANALLOC_GUARD_SAMPLE needs 4 KiB OS pages; guarded sampling is off\n");
    g_sampler.guard_every = 0;
    g_sampler.on = g_sampler.profile_rate != 0;
    return;
  }
  struct sigaction sa = {};
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &g_previous_segv) == 0) g_enabled = true;
}

namespace {

// When the quarantine is full, the oldest object in it leaves; if its span
// has the pages the new object needs, the new object takes it over: the span
// is inaccessible already, so only the object's own pages are opened (one
// mprotect instead of three, and no trip through the page heap).
SPANALLOC_RARE void *ReuseQuarantined(SampleRecord *r, size_t size) {
  Length n = GuardedPages(size);
  SampleRecord *old;
  {
    MutexLock l(g_sample_lock);
    old = g_quarantine_head;
    if (g_quarantined < kQuarantine || old == nullptr || old->span->npages != n) return nullptr;
    g_quarantine_head = old->next;
    if (g_quarantine_head) g_quarantine_head->prev = nullptr; else g_quarantine_tail = nullptr;
    g_quarantined--;
  }
  Span *s = old->span;
  uintptr_t end = DataEnd(s), p = end - size, first = p & ~(kOsPage - 1);
  if (!OsProtect(reinterpret_cast<void *>(first), end - first, true)) {
    ReleaseGuardedSpan(s);
    DeleteRecord(old);
    MutexLock l(g_sample_lock);
    g_guarded--;
    return nullptr;
  }
  r->span = s;
  r->ptr = p;
  __atomic_store_n(&s->sample, r, __ATOMIC_RELEASE);
  DeleteRecord(old);
  MutexLock l(g_sample_lock);
  g_placed++;
  return reinterpret_cast<void *>(p);
}

}  // namespace

SPANALLOC_RARE void *PlaceGuarded(SampleRecord *r, size_t size) noexcept {
  if (!g_enabled) return nullptr;
  if (void *p = ReuseQuarantined(r, size)) return p;
  {
    MutexLock l(g_sample_lock);
    if (g_guarded >= kMaxGuarded) {
      g_skipped++;
      return nullptr;
    }
    g_guarded++;
  }
  Length n = GuardedPages(size);
  bool zeroed;
  Span *s = g_page_heap.AllocLarge(n, 1, &zeroed);
  uintptr_t p = 0;
  if (s != nullptr) {
    uintptr_t end = DataEnd(s);
    p = end - size;
    uintptr_t first = p & ~(kOsPage - 1);
    if (OsProtect(reinterpret_cast<void *>(s->start_addr()), first - s->start_addr(), false) &&
        OsProtect(reinterpret_cast<void *>(end), s->end_addr() - end, false)) {
      s->state = SpanState::kSampled;
      r->span = s;
      r->ptr = p;
    } else {
      ReleaseGuardedSpan(s);
      s = nullptr;
    }
  }
  MutexLock l(g_sample_lock);
  if (s == nullptr) {
    g_guarded--;
    return nullptr;
  }
  g_placed++;
  return reinterpret_cast<void *>(p);
}

void FreeGuarded(Span *s, SampleRecord *r, void *p, const char *func) noexcept {
  if (r->freed) ReportGuardedMisuse(r, func, "double free");
  if (reinterpret_cast<uintptr_t>(p) != r->ptr) FatalMisuse(func, p, "invalid pointer", "not the start of an object");
  int saved = errno;
  {
    bool was_busy = tls_sampler_busy;
    tls_sampler_busy = true;
    r->free_depth = uint16_t(CollectStack(r->free_stack, kMaxFrames));
    tls_sampler_busy = was_busy;
  }
  uintptr_t first = r->ptr & ~(kOsPage - 1);
  bool hidden = OsProtect(reinterpret_cast<void *>(first), DataEnd(s) - first, false);
  SampleRecord *victim = nullptr;
  {
    MutexLock l(g_sample_lock);
    if (r->kinds & kSampleProfile) UnlinkRecordLocked(r);
    if (hidden) {
      __atomic_store_n(&r->freed, true, __ATOMIC_RELEASE);
      r->next = nullptr;
      r->prev = g_quarantine_tail;
      if (g_quarantine_tail) g_quarantine_tail->next = r; else g_quarantine_head = r;
      g_quarantine_tail = r;
      if (++g_quarantined > kQuarantine) victim = g_quarantine_head;
    } else {
      victim = r;  // could not hide it: no quarantine
    }
    if (victim != nullptr && victim->freed) {
      g_quarantine_head = victim->next;
      if (g_quarantine_head) g_quarantine_head->prev = nullptr; else g_quarantine_tail = nullptr;
      g_quarantined--;
    }
    if (victim != nullptr) g_guarded--;
  }
  if (victim != nullptr) {
    ReleaseGuardedSpan(victim->span);
    DeleteRecord(victim);
  }
  errno = saved;
}

SPANALLOC_RARE void ReportGuardedMisuse(SampleRecord *r, const char *func, const char *fault) noexcept {
  {
    FdWriter w(STDERR_FILENO);
    WriteHead(w, fault, r, func);
    w.Str("already free; guarded sample)\n");
  }
  WriteStacks(STDERR_FILENO, r);
  abort();
}

SPANALLOC_RARE GuardStats GetGuardStats() {
  MutexLock l(g_sample_lock);
  return GuardStats{g_placed, g_skipped, g_guarded - g_quarantined, g_quarantined};
}

}  // namespace spanalloc
