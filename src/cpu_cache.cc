// Per-CPU caches on restartable sequences; cpu_cache.h says how they work,
// how they coexist with the thread caches and what bounds them.
#include "cpu_cache.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "central_list.h"
#include "free_list.h"
#include "metadata_alloc.h"
#include "options.h"
#include "os_memory.h"
#include "page_heap.h"
#include "sampler.h"
#include "scavenger.h"
#include "size_classes.h"

// glibc 2.35+ exports where each thread's rseq area is (an offset from the
// thread pointer) and its size (0: glibc did not register one). Weak: an
// older glibc lacks them, and spanalloc then keeps thread caches.
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

// Restartable sequences are written for x86-64 only. ThreadSanitizer cannot
// see that the kernel serialises sequences on one CPU, and would report each
// object passed between two threads through a CPU's list as a race: TSan
// builds keep thread caches (README, "Options").
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPANALLOC_NO_RSEQ_TSAN 1
#endif
#endif
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(SPANALLOC_NO_RSEQ_TSAN)
#define SPANALLOC_HAVE_RSEQ 1
#else
#define SPANALLOC_HAVE_RSEQ 0
#endif

namespace spanalloc {

constinit std::atomic<bool> CpuCache::on_{false};
constinit uint32_t CpuCache::ncpu_ = 0;
constinit const char *CpuCache::fallback_reason_ = nullptr;

namespace {

// One class's list on one CPU (cpu_cache.h: word = head | count << 47).
struct CpuList {
  uint64_t word;
  uint64_t limit;  // max_length << 47
};
static_assert(sizeof(CpuList) == 16, "the sequences index lists by class << 4");

constexpr int kCountShift = 47;
constexpr uint64_t kCountOne = uint64_t{1} << kCountShift;
constexpr uint64_t kHeadMask = kCountOne - 1;
constexpr int kSlabShift = 11;  // 2 KiB per CPU: the sequences find a slab by cpu << 11

struct Slab {
  CpuList lists[kNumClasses];
  // Idleness: slow_paths counts this CPU's slow paths (a plain increment by
  // whichever thread runs there: a lost count only delays a drain); Drain
  // notes the count it saw and when it changed (seen_*), and calls the CPU
  // idle once the count has not moved for the idle time.
  uint64_t slow_paths;
  uint64_t seen_slow_paths;
  uint64_t seen_ms;
  // Trimming (cpu_cache.h, Bounds): each list's low-water count since the
  // last trim, lowered after every refill from the list (plain stores by
  // whichever thread runs here: a lost store only trims less or more once).
  uint32_t low[kNumClasses];
};
static_assert(sizeof(Slab) <= (size_t{1} << kSlabShift));

// Set once by Init, before on_; read-only afterwards.
constinit char *g_slabs = nullptr;        // ncpu_ slabs, 2 KiB apart
constinit intptr_t g_rseq_off = 0;        // __rseq_offset
constinit uint32_t g_max_length[kNumClasses] = {};

inline Slab *SlabOf(uint32_t cpu) { return reinterpret_cast<Slab *>(g_slabs + (uintptr_t(cpu) << kSlabShift)); }
inline uint64_t ListOffset(uint32_t cl) { return uint64_t(cl) * sizeof(CpuList); }
inline void *HeadOf(uint64_t word) { return reinterpret_cast<void *>(word & kHeadMask); }
inline uint32_t CountOf(uint64_t word) { return uint32_t(word >> kCountShift); }

// The first word of every object handed out is cleared (free_list.h).
inline void *HandOut(void *p) {
  *static_cast<LinkWord *>(p) = 0;
  return p;
}

// The link of free object slot, reported unless plausible (free_list.h).
inline void *PlausibleLinkOf(void *slot, uint32_t cl) {
  void *next = LinkOf(slot);
  if (SPANALLOC_UNLIKELY(!LinkIsPlausible(next))) FatalCorruptLink(slot, cl, "free");
  return next;
}

#if SPANALLOC_HAVE_RSEQ
// ---- the restartable sequences ------------------------------------------
//
// Each sequence is one asm statement:
//   - an rseq_cs descriptor (struct rseq_cs: version, flags, start_ip,
//     post_commit_offset, abort_ip; 32-byte aligned) in section __rseq_cs;
//   - label 2: stores the descriptor's address in the thread's rseq area
//     (rseq_cs, offset 8), which arms it;
//   - label 3 (start): reads the CPU number (cpu_id, offset 4; negative
//     when the thread has no registration: that and any number past our
//     slabs is a miss), finds the slab and the list, and works on it;
//   - the commit, one store, as the last instruction before label 4;
//   - label 5, the abort handler, in section __rseq_failure, preceded by
//     glibc's signature for x86 (RSEQ_SIG, 0x53053053; the kernel checks the
//     four bytes before abort_ip): it jumps back to label 2, re-arming and
//     starting over.
// The kernel moves a thread that is preempted, migrated or signalled
// between labels 3 and 4 to the abort handler; nothing before the commit
// is visible to other threads except writes into objects the sequence owns
// (a pushed object's link), which a rerun simply writes again. Inputs are
// never modified, so a rerun starts from the same values; all temporaries
// are early-clobbered outputs.
#define SPANALLOC_RSEQ_PROLOGUE                    \
  ".pushsection __rseq_cs, \"aw\"\n\t"             \
  ".balign 32\n\t"                                 \
  "1:\n\t"                                         \
  ".long 0, 0\n\t"                                 \
  ".quad 3f, (4f - 3f), 5f\n\t"                    \
  ".popsection\n\t"                                \
  "2:\n\t"                                         \
  "leaq 1b(%%rip), %[slot]\n\t"                    \
  "movq %[slot], %%fs:8(%[off])\n\t"               \
  "3:\n\t"                                         \
  "movl %%fs:4(%[off]), %k[slot]\n\t"              \
  "cmpl %[ncpu], %k[slot]\n\t"                     \
  "jae %l[miss]\n\t"
#define SPANALLOC_RSEQ_SLOT   \
  "shlq $11, %[slot]\n\t"     \
  "addq %[base], %[slot]\n\t"
#define SPANALLOC_RSEQ_EPILOGUE              \
  "4:\n\t"                                   \
  ".pushsection __rseq_failure, \"ax\"\n\t"  \
  ".long 0x53053053\n\t"                     \
  "5:\n\t"                                   \
  "jmp 2b\n\t"                               \
  ".popsection\n\t"
static_assert(kSlabShift == 11, "SPANALLOC_RSEQ_SLOT shifts by 11");

// Pops the head of class cl's list on the current CPU, its link decoded
// and checked for plausibility before it becomes the new head. nullptr on a
// miss (empty list, or no CPU); *corrupt set when the head's link was
// overwritten (the list is left as it was).
SPANALLOC_INLINE void *RseqPop(uint32_t cl, bool *corrupt) {
  uint64_t slot, w, p, next;
  asm volatile goto(SPANALLOC_RSEQ_PROLOGUE SPANALLOC_RSEQ_SLOT
           "movq (%[slot]), %[w]\n\t"
           "movq %[w], %[p]\n\t"
           "shlq $17, %[p]\n\t"
           "shrq $17, %[p]\n\t"
           "jz %l[miss]\n\t"
           "movq (%[p]), %[next]\n\t"
           "xorq %[p], %[next]\n\t"
           "xorq %[secret], %[next]\n\t"
           "testq %[bad], %[next]\n\t"
           "jnz %l[bad_link]\n\t"
           "subq %[p], %[w]\n\t"
           "addq %[next], %[w]\n\t"
           "subq %[one], %[w]\n\t"
           "movq %[w], (%[slot])\n\t"  // commit
           SPANALLOC_RSEQ_EPILOGUE
           : [slot] "=&r"(slot), [w] "=&r"(w), [p] "=&r"(p), [next] "=&r"(next)
           : [off] "r"(g_rseq_off), [ncpu] "rm"(CpuCache::NumCpus()), [base] "r"(g_slabs + ListOffset(cl)),
             [secret] "rm"(g_link_secret), [bad] "r"(kLinkBadBits), [one] "r"(kCountOne)
           : "memory", "cc"
           : miss, bad_link);
  return reinterpret_cast<void *>(p);
miss:
  return nullptr;
bad_link:
  *corrupt = true;
  return nullptr;
}

// Pushes p on class cl's list on the current CPU, its link encoded. False
// when the list is full or there is no CPU.
SPANALLOC_INLINE bool RseqPush(uint32_t cl, void *p) {
  uint64_t slot, w, h;
  asm volatile goto(SPANALLOC_RSEQ_PROLOGUE SPANALLOC_RSEQ_SLOT
           "movq (%[slot]), %[w]\n\t"
           "cmpq 8(%[slot]), %[w]\n\t"  // count < max_length
           "jae %l[miss]\n\t"
           "movq %[w], %[h]\n\t"
           "shlq $17, %[h]\n\t"
           "shrq $17, %[h]\n\t"
           "subq %[h], %[w]\n\t"
           "addq %[one], %[w]\n\t"
           "addq %[p], %[w]\n\t"
           "xorq %[p], %[h]\n\t"
           "xorq %[secret], %[h]\n\t"
           "movq %[h], (%[p])\n\t"     // p's link: the old head, encoded
           "movq %[w], (%[slot])\n\t"  // commit
           SPANALLOC_RSEQ_EPILOGUE
           : [slot] "=&r"(slot), [w] "=&r"(w), [h] "=&r"(h)
           : [off] "r"(g_rseq_off), [ncpu] "rm"(CpuCache::NumCpus()), [base] "r"(g_slabs + ListOffset(cl)),
             [secret] "rm"(g_link_secret), [one] "r"(kCountOne), [p] "r"(p)
           : "memory", "cc"
           : miss);
  return true;
miss:
  return false;
}

// Pushes the chain head..tail of n objects (linked, tail's link anything)
// on class cl's list on the current CPU. False when they do not all fit or
// there is no CPU (then nothing changed).
bool RseqPushChain(uint32_t cl, void *head, void *tail, uint32_t n) {
  uint64_t slot, w, h;
  uint64_t nshift = uint64_t(n) << kCountShift;
  asm volatile goto(SPANALLOC_RSEQ_PROLOGUE SPANALLOC_RSEQ_SLOT
           "movq (%[slot]), %[w]\n\t"
           "movq %[w], %[h]\n\t"
           "addq %[nshift], %[h]\n\t"
           "subq %[one], %[h]\n\t"
           "cmpq 8(%[slot]), %[h]\n\t"  // count + n <= max_length
           "jae %l[miss]\n\t"
           "movq %[w], %[h]\n\t"
           "shlq $17, %[h]\n\t"
           "shrq $17, %[h]\n\t"
           "subq %[h], %[w]\n\t"
           "addq %[nshift], %[w]\n\t"
           "addq %[head], %[w]\n\t"
           "xorq %[tail], %[h]\n\t"
           "xorq %[secret], %[h]\n\t"
           "movq %[h], (%[tail])\n\t"  // tail's link: the old head, encoded
           "movq %[w], (%[slot])\n\t"  // commit
           SPANALLOC_RSEQ_EPILOGUE
           : [slot] "=&r"(slot), [w] "=&r"(w), [h] "=&r"(h)
           : [off] "r"(g_rseq_off), [ncpu] "rm"(CpuCache::NumCpus()), [base] "r"(g_slabs + ListOffset(cl)),
             [secret] "rm"(g_link_secret), [one] "r"(kCountOne), [nshift] "r"(nshift), [head] "r"(head),
             [tail] "r"(tail)
           : "memory", "cc"
           : miss);
  return true;
miss:
  return false;
}

// Pops up to k objects (k >= 1) off class cl's list on the current CPU:
// min(k, count), walking and checking their links inside the sequence;
// *head and *tail get the chain (tail's link still points into the list:
// the caller ends it). Returns how many, 0 when the list is empty or there
// is no CPU; *corrupt set when a link on the way was overwritten (then 0,
// and the list is left as it was).
uint32_t RseqPopUpTo(uint32_t cl, uint32_t k, void **head, void **tail, bool *corrupt) {
  if (k == 0) return 0;  // the sequence's min(count, k) would take the whole list
  uint64_t slot, w, h, t, n, i, got;
  asm volatile goto(SPANALLOC_RSEQ_PROLOGUE SPANALLOC_RSEQ_SLOT
           "movq (%[slot]), %[w]\n\t"
           "movq %[w], %[h]\n\t"
           "shlq $17, %[h]\n\t"
           "shrq $17, %[h]\n\t"
           "jz %l[miss]\n\t"          // empty
           "movq %[w], %[i]\n\t"
           "shrq $47, %[i]\n\t"       // count
           "cmpq %[k], %[i]\n\t"
           "cmovaq %[k], %[i]\n\t"    // i = min(count, k) >= 1
           "movq %[i], %[got]\n\t"
           "movq %[h], %[t]\n\t"
           "6:\n\t"  // t = object i from the end of the chain; n = its link
           "movq (%[t]), %[n]\n\t"
           "xorq %[t], %[n]\n\t"
           "xorq %[secret], %[n]\n\t"
           "testq %[bad], %[n]\n\t"
           "jnz %l[bad_link]\n\t"
           "decq %[i]\n\t"
           "jz 7f\n\t"
           "movq %[n], %[t]\n\t"
           "jmp 6b\n\t"
           "7:\n\t"
           "subq %[h], %[w]\n\t"
           "addq %[n], %[w]\n\t"
           "movq %[got], %[i]\n\t"
           "shlq $47, %[i]\n\t"
           "subq %[i], %[w]\n\t"
           "movq %[w], (%[slot])\n\t"  // commit
           SPANALLOC_RSEQ_EPILOGUE
           : [slot] "=&r"(slot), [w] "=&r"(w), [h] "=&r"(h), [t] "=&r"(t), [n] "=&r"(n), [i] "=&r"(i),
             [got] "=&r"(got)
           : [off] "r"(g_rseq_off), [ncpu] "rm"(CpuCache::NumCpus()), [base] "r"(g_slabs + ListOffset(cl)),
             [secret] "rm"(g_link_secret), [bad] "r"(kLinkBadBits), [k] "r"(uint64_t(k))
           : "memory", "cc"
           : miss, bad_link);
  *head = reinterpret_cast<void *>(h);
  *tail = reinterpret_cast<void *>(t);
  return uint32_t(got);
miss:
  return 0;
bad_link:
  *corrupt = true;
  return 0;
}

// Takes class cl's whole list off the current CPU (which must be `want`
// unless want < 0) and returns its word in *out. False when there is no
// CPU or it is not `want`.
bool RseqTakeAll(uint32_t cl, int32_t want, uint64_t *out) {
  uint64_t slot, w;
  asm volatile goto(SPANALLOC_RSEQ_PROLOGUE
           "testl %[want], %[want]\n\t"
           "js 6f\n\t"
           "cmpl %[want], %k[slot]\n\t"
           "jne %l[miss]\n\t"
           "6:\n\t"
           SPANALLOC_RSEQ_SLOT
           "movq (%[slot]), %[w]\n\t"
           "movq $0, (%[slot])\n\t"  // commit
           SPANALLOC_RSEQ_EPILOGUE
           : [slot] "=&r"(slot), [w] "=&r"(w)
           : [off] "r"(g_rseq_off), [ncpu] "rm"(CpuCache::NumCpus()), [base] "r"(g_slabs + ListOffset(cl)),
             [want] "r"(want)
           : "memory", "cc"
           : miss);
  *out = w;
  return true;
miss:
  return false;
}

int32_t RawCpuId() {
  int32_t cpu;
  asm volatile("movl %%fs:4(%1), %0" : "=r"(cpu) : "r"(g_rseq_off));
  return cpu;
}
#else   // !SPANALLOC_HAVE_RSEQ: never called (Init keeps the mode off)
inline void *RseqPop(uint32_t, bool *) { return nullptr; }
inline bool RseqPush(uint32_t, void *) { return false; }
bool RseqPushChain(uint32_t, void *, void *, uint32_t) { return false; }
bool RseqTakeAll(uint32_t, int32_t, uint64_t *) { return false; }
uint32_t RseqPopUpTo(uint32_t, uint32_t, void **, void **, bool *) { return 0; }
int32_t RawCpuId() { return -1; }
#endif  // SPANALLOC_HAVE_RSEQ

// ---- slow paths ---------------------------------------------------------

// Notes the count of class cl's list on cpu as a low-water candidate
// (after a refill took from it).
inline void NoteLow(uint32_t cpu, uint32_t cl) {
  Slab *s = SlabOf(cpu);
  uint32_t now = CountOf(__atomic_load_n(&s->lists[cl].word, __ATOMIC_RELAXED));
  if (now < __atomic_load_n(&s->low[cl], __ATOMIC_RELAXED)) __atomic_store_n(&s->low[cl], now, __ATOMIC_RELAXED);
}

// Gives the objects below each list's low-water mark to the central lists
// (no refill needed them since the last trim) and starts the next period.
// Pops from the CPU the thread runs on (normally cpu; after a migration the
// other CPU's lists lose what cpu's marks say, which only trims them early).
void Trim(uint32_t cpu) {
  Slab *s = SlabOf(cpu);
  for (uint32_t cl = 1; cl < kNumClasses; cl++) {
    uint32_t low = __atomic_load_n(&s->low[cl], __ATOMIC_RELAXED);
    uint32_t k = std::min(low, CountOf(__atomic_load_n(&s->lists[cl].word, __ATOMIC_RELAXED)));
    while (k > 0) {
      void *head, *tail;
      bool corrupt = false;  // an overwritten link stays for the next refill to report
      uint32_t got = RseqPopUpTo(cl, std::min(k, kClassShape[cl].batch), &head, &tail, &corrupt);
      if (got == 0) break;
      SetLink(tail, nullptr);
      g_central[cl].InsertRange(head, tail, int(got));
      k -= got;
    }
    __atomic_store_n(&s->low[cl], CountOf(__atomic_load_n(&s->lists[cl].word, __ATOMIC_RELAXED)), __ATOMIC_RELAXED);
  }
}

// The CPU this thread is on if it has a slab, else -1; marks it busy.
int32_t TouchCurrentCpu() {
  int32_t cpu = RawCpuId();
  if (cpu < 0 || uint32_t(cpu) >= CpuCache::NumCpus()) return -1;
  uint64_t *count = &SlabOf(uint32_t(cpu))->slow_paths;
  __atomic_store_n(count, __atomic_load_n(count, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
  return cpu;
}

// Gives the n objects linked from head (taken off a list: the last one's
// link is the end) back to the central list in batches; returns the bytes.
uint64_t ReleaseChain(uint32_t cl, void *head, uint32_t n) {
  const uint32_t batch = kClassShape[cl].batch;
  uint64_t bytes = uint64_t(n) * kClassShape[cl].size;
  while (n > 0) {
    uint32_t k = std::min(n, batch);
    void *last = head;
    for (uint32_t i = 1; i < k; i++) last = PlausibleLinkOf(last, cl);
    void *rest = k < n ? PlausibleLinkOf(last, cl) : nullptr;
    SetLink(last, nullptr);
    g_central[cl].InsertRange(head, last, int(k));
    head = rest;
    n -= k;
  }
  return bytes;
}

// One object straight to / from the central list: threads without a CPU
// (no rseq registration, or exiting after glibc dropped it), and classes
// whose share of the budget is below one object.
void *CentralAllocOne(uint32_t cl) {
  void *head, *tail;
  return g_central[cl].RemoveRange(&head, &tail, 1) == 1 ? HandOut(head) : FailNoMemory();
}
void CentralFreeOne(void *p, uint32_t cl) {
  SetLink(p, nullptr);
  g_central[cl].InsertRange(p, p, 1);
}

// The current CPU's list of cl is empty: one batch (at most max_length)
// from the central list; the first object is handed out, the rest cached.
SPANALLOC_NOINLINE void *AllocMiss(uint32_t cl) {
  if (TouchCurrentCpu() < 0 || g_max_length[cl] == 0) return CentralAllocOne(cl);
  void *head, *tail;
  uint32_t want = std::min(g_max_length[cl], kClassShape[cl].batch);
  int got = g_central[cl].RemoveRange(&head, &tail, int(want));
  if (got == 0) return FailNoMemory();
  if (got > 1) {
    void *rest = CheckedLinkOf(head, cl, "malloc");
    // Migrated meanwhile onto a CPU whose list filled up, or a whole
    // transfer slot that is more than max_length: the rest goes back.
    if (!RseqPushChain(cl, rest, tail, uint32_t(got - 1))) g_central[cl].InsertRange(rest, tail, got - 1);
  }
  return HandOut(head);
}

// The current CPU's list of cl is full. Its newest batch goes to the
// central list, popped in one sequence that walks and checks the batch's
// links (a whole batch: the central list parks it in a transfer slot in
// O(1)); then p is pushed. A class whose share is below one batch gives
// back its whole list instead.
SPANALLOC_NOINLINE void FreeMiss(void *p, uint32_t cl) {
  const uint32_t batch = kClassShape[cl].batch;
  if (TouchCurrentCpu() >= 0 && g_max_length[cl] >= batch) {
    void *head, *tail;
    bool corrupt = false;  // not used: see below
    // An overwritten link on the way (corrupt) falls through to the walk
    // below, which reports the very object.
    if (uint32_t got = RseqPopUpTo(cl, batch, &head, &tail, &corrupt)) {
      SetLink(tail, nullptr);
      g_central[cl].InsertRange(head, tail, int(got));
      if (!RseqPush(cl, p)) CentralFreeOne(p, cl);  // filled again meanwhile, or moved to a CPU's full list
      g_scavenger.StartIfRequested();  // no lock held here (scavenger.h)
      return;
    }
  }
  uint64_t w;
  if (TouchCurrentCpu() < 0 || g_max_length[cl] == 0 || !RseqTakeAll(cl, -1, &w)) {
    CentralFreeOne(p, cl);
  } else {
    if (CountOf(w) > 0) ReleaseChain(cl, HeadOf(w), CountOf(w));
    if (!RseqPush(cl, p)) CentralFreeOne(p, cl);
  }
  g_scavenger.StartIfRequested();
}

[[noreturn]] SPANALLOC_COLD void CorruptHead(uint32_t cl) {
  // The sequence left the list as it was: its head is the object whose
  // link was overwritten (unless another thread on this CPU popped it since,
  // which can only move the report to the next bad link).
  int32_t cpu = RawCpuId();
  void *head = cpu >= 0 && uint32_t(cpu) < CpuCache::NumCpus()
                   ? HeadOf(__atomic_load_n(&SlabOf(uint32_t(cpu))->lists[cl].word, __ATOMIC_RELAXED))
                   : nullptr;
  FatalCorruptLink(head, cl, "malloc");
}

// /sys/devices/system/cpu/possible ("0-7", "0,2-5"): one past the highest
// CPU number, 0 if unreadable. Read without allocating.
uint32_t PossibleCpus() {
  int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  uint32_t highest = 0, value = 0;
  bool digits = false;
  for (const char *s = buf;; s++) {
    if (*s >= '0' && *s <= '9') {
      value = value * 10 + uint32_t(*s - '0');
      digits = true;
      if (value > (1u << 20)) return 0;
    } else {
      if (digits) highest = std::max(highest, value);
      value = 0;
      digits = false;
      if (*s == '\0') break;
    }
  }
  return highest + 1;
}

// Shares the per-CPU budget between the classes (cpu_cache.h), in two
// rounds: first up to one batch per class (so that flushes and refills are
// whole batches, which the central list moves in O(1)), then up to a second
// batch. In each round the classes go in order of what they ask for, each
// taking at most an equal share of what is left.
void ShareBudget(uint64_t budget) {
  uint32_t order[kNumClasses];
  uint32_t n = 0;
  auto batch_bytes = [](uint32_t cl) { return uint64_t(kClassShape[cl].batch) * kClassShape[cl].size; };
  for (uint32_t cl = 1; cl < kNumClasses; cl++) order[n++] = cl;
  std::sort(order, order + n, [&](uint32_t a, uint32_t b) { return batch_bytes(a) < batch_bytes(b); });
  uint64_t left = budget;
  for (int round = 0; round < 2; round++) {
    for (uint32_t i = 0; i < n; i++) {
      uint32_t cl = order[i];
      uint64_t give = std::min(batch_bytes(cl), left / (n - i));
      uint32_t objects = uint32_t(give / kClassShape[cl].size);
      g_max_length[cl] += objects;
      left -= uint64_t(objects) * kClassShape[cl].size;
    }
  }
}

}  // namespace

void CpuCache::Init() noexcept {
  if (g_options.cache_mode != CacheMode::kCpu) return;
  fallback_reason_ = Start();
  // What is in force is what the report shows (and the reason, here).
  if (fallback_reason_ != nullptr) g_options.cache_mode = CacheMode::kThread;
}

const char *CpuCache::Start() noexcept {
  if (!SPANALLOC_HAVE_RSEQ) return "no rseq sequences in this build (x86-64 only, not under TSan)";
  if (&__rseq_size == nullptr || &__rseq_offset == nullptr) return "glibc older than 2.35 (no __rseq_offset)";
  if (__rseq_size == 0) return "glibc registered no rseq area (glibc.pthread.rseq=0, or no kernel support)";
  if (g_sampler.on) return "sampling is on (its countdowns live in the thread caches)";
  g_rseq_off = __rseq_offset;
  if (RawCpuId() < 0) return "this thread has no rseq registration";
  uint32_t ncpu = std::min<uint32_t>(PossibleCpus(), CPU_SETSIZE);
  if (ncpu == 0) return "cannot read /sys/devices/system/cpu/possible";
  size_t bytes = ((size_t(ncpu) << kSlabShift) + kPageSize - 1) & ~(kPageSize - 1);
  g_slabs = static_cast<char *>(OsMap(bytes, kPageSize));
  if (g_slabs == nullptr) return "out of memory for the per-CPU slabs";
  g_metadata_bytes.fetch_add(bytes, std::memory_order_relaxed);
  ShareBudget(g_options.cpu_cache_bytes);
  for (uint32_t cpu = 0; cpu < ncpu; cpu++)
    for (uint32_t cl = 1; cl < kNumClasses; cl++) SlabOf(cpu)->lists[cl].limit = uint64_t(g_max_length[cl]) << kCountShift;
  ncpu_ = ncpu;
  on_.store(true, std::memory_order_release);
  return nullptr;
}

int CpuCache::RemoveRange(uint32_t cl, void **head, void **tail, uint32_t n) noexcept {
  int32_t cpu = TouchCurrentCpu();
  if (cpu < 0) return 0;
  bool corrupt = false;
  uint32_t got = RseqPopUpTo(cl, n, head, tail, &corrupt);
  NoteLow(uint32_t(cpu), cl);
  if (got != 0) {
    SetLink(*tail, nullptr);
    return int(got);
  }
  if (corrupt) {
    // Take the list and walk it link by link: the walk reports the very
    // object whose link was overwritten.
    uint64_t w;
    if (RseqTakeAll(cl, -1, &w) && CountOf(w) > 0) ReleaseChain(cl, HeadOf(w), CountOf(w));
  }
  return 0;
}

void CpuCache::InsertRange(uint32_t cl, void *head, void *tail, uint32_t n) noexcept {
  int32_t cpu = TouchCurrentCpu();
  if (cpu >= 0) {
    if (RseqPushChain(cl, head, tail, n)) return;
    // Full. A whole batch goes on into a free transfer slot of the central
    // list as it is: its links were just walked by the thread cache, and
    // are not walked again by a pop (prodcons at 2 threads, where the
    // consumer's CPU list is always full: CPU time x 0.7). Otherwise the
    // list's newest batch goes to the central list (a whole batch when the
    // list is at its limit, so into a transfer slot or back to its spans),
    // then the chain gets its room. (Sending the chain to the spans
    // instead, when the slots are full, left the list holding its oldest
    // objects, and app's RSS crept up round after round: 12.0 -> 12.8 MiB.)
    const uint32_t batch = kClassShape[cl].batch;
    if (n == batch) {
      SetLink(tail, nullptr);
      if (g_central[cl].TryInsertBatch(head, tail)) return;
    }
    void *bh, *bt;
    bool corrupt = false;
    uint32_t got;
    if (g_max_length[cl] >= batch && (got = RseqPopUpTo(cl, batch, &bh, &bt, &corrupt)) != 0) {
      SetLink(bt, nullptr);
      g_central[cl].InsertRange(bh, bt, int(got));
      if (RseqPushChain(cl, head, tail, n)) return;
    }
  }
  SetLink(tail, nullptr);
  g_central[cl].InsertRange(head, tail, int(n));
}

void CpuCache::ThreadExiting() noexcept {
  int32_t cpu = TouchCurrentCpu();
  if (cpu >= 0) Trim(uint32_t(cpu));
}

void *CpuCache::Alloc(uint32_t cl) noexcept {
  bool corrupt = false;
  void *p = RseqPop(cl, &corrupt);
  if (SPANALLOC_LIKELY(p != nullptr)) return HandOut(p);
  if (SPANALLOC_UNLIKELY(corrupt)) CorruptHead(cl);
  return AllocMiss(cl);
}

void CpuCache::Free(void *p, uint32_t cl) noexcept {
  if (SPANALLOC_LIKELY(RseqPush(cl, p))) return;
  FreeMiss(p, cl);
}

uint64_t CpuCache::Drain(uint64_t idle_ms) noexcept {
  if (!On()) return 0;
  int saved = errno;
  cpu_set_t old;
  if (sched_getaffinity(0, sizeof old, &old) != 0) return 0;
  uint64_t now = NowMillis(), drained = 0;
  bool moved = false;
  for (uint32_t cpu = 0; cpu < ncpu_; cpu++) {
    Slab *s = SlabOf(cpu);
    if (idle_ms != 0) {
      uint64_t count = __atomic_load_n(&s->slow_paths, __ATOMIC_RELAXED);
      if (count != s->seen_slow_paths || s->seen_ms == 0) {
        s->seen_slow_paths = count;  // busy since the last look
        s->seen_ms = now;
        continue;
      }
      if (now - s->seen_ms < idle_ms) continue;
    }
    if (CachedBytesOn(cpu) == 0) {
      for (uint32_t cl = 1; cl < kNumClasses; cl++) __atomic_store_n(&s->low[cl], 0, __ATOMIC_RELAXED);
      continue;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    // A CPU we may not run on (cpuset) cannot be drained from here; nor can
    // threads that may not run there have filled it since.
    if (sched_setaffinity(0, sizeof one, &one) != 0) continue;
    moved = true;
    for (uint32_t cl = 1; cl < kNumClasses; cl++) {
      uint64_t w = 0;
      // sched_setaffinity returns on the new CPU; a hot-unplug or a changed
      // cpuset could still move us: then this CPU is left for next time.
      if (!RseqTakeAll(cl, int32_t(cpu), &w)) break;
      __atomic_store_n(&s->low[cl], 0, __ATOMIC_RELAXED);  // a new trim period, from empty
      if (CountOf(w) > 0) drained += ReleaseChain(cl, HeadOf(w), CountOf(w));
    }
  }
  if (moved) sched_setaffinity(0, sizeof old, &old);
  errno = saved;
  return drained;
}

uint64_t CpuCache::CachedBytesOn(uint32_t cpu) noexcept {
  if (cpu >= ncpu_) return 0;
  uint64_t bytes = 0;
  for (uint32_t cl = 1; cl < kNumClasses; cl++)
    bytes += uint64_t(CountOf(__atomic_load_n(&SlabOf(cpu)->lists[cl].word, __ATOMIC_RELAXED))) * kClassShape[cl].size;
  return bytes;
}

uint64_t CpuCache::CachedBytes() noexcept {
  uint64_t bytes = 0;
  for (uint32_t cpu = 0; cpu < ncpu_; cpu++) bytes += CachedBytesOn(cpu);
  return bytes;
}

uint32_t CpuCache::MaxLength(uint32_t cl) noexcept { return cl < kNumClasses ? g_max_length[cl] : 0; }

bool CpuCache::OnCurrentCpuList(const void *p, uint32_t cl) noexcept {
  int32_t cpu = RawCpuId();
  if (cpu < 0 || uint32_t(cpu) >= ncpu_ || cl >= kNumClasses) return false;
  uint64_t w = __atomic_load_n(&SlabOf(uint32_t(cpu))->lists[cl].word, __ATOMIC_RELAXED);
  void *q = HeadOf(w);
  for (uint32_t i = 0; q != nullptr && i < CountOf(w); i++) {
    if (q == p) return true;
    q = LinkOf(q);
    if (!LinkIsValid(q, cl)) break;
  }
  return false;
}

int CpuCache::CurrentCpu() noexcept { return On() ? RawCpuId() : -1; }

}  // namespace spanalloc
