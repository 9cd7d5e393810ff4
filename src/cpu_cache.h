// Per-CPU caches (tcmalloc's per-CPU mode; Go's per-P mcache): one set of
// free lists per logical CPU behind small per-thread lists, so that the
// memory held in caches is bounded by the number of CPUs, not of threads.
//
// Mode. SPANALLOC_CACHE=cpu|thread (options.h) chooses at start-up, once.
// In cpu mode the thread caches stay in front (below), small.
// Per-CPU caches need restartable sequences: glibc 2.35+ registers an rseq
// area for every thread (found through __rseq_offset; __rseq_size is 0 when
// it did not, e.g. GLIBC_TUNABLES=glibc.pthread.rseq=0), x86-64, and no
// ThreadSanitizer (it cannot see the ordering that rseq gives, and would
// report every object handed from one thread to the next on a CPU). Without
// them, or with sampling on (its countdowns live in the thread caches),
// spanalloc keeps the thread caches (thread_cache.h).
//
// How the two modes coexist: in cpu mode every thread still has its cache
// (thread_cache.h), and the fast paths (allocator.h) are the same
// instructions in both modes; what changes is behind them. A thread
// cache's refill takes a chain from its CPU's list (RemoveRange) and its
// flush gives one back (InsertRange), with no lock, before the central list
// is asked; and its byte budget binds from the first object, shared per CPU
// between the live caches (ThreadCache::Budget: with 64 threads on 2 CPUs,
// 128 KiB each instead of 4 MiB). So the memory held in caches is bounded
// by CPUs, not threads: ncpu * (SPANALLOC_CPU_CACHE_KB +
// SPANALLOC_THREAD_CACHE_KB), however many threads live, while a thread's
// own lists keep the fast path as short as in thread mode. (Measured and
// kept out: per-CPU lists alone, reached by letting every thread-cache fast
// path miss into them, about 118 instructions per malloc+free pair instead
// of 64; BENCHMARKS.md, "Per-CPU caches".) Threads without a cache (exiting,
// or out of memory for one) allocate and free through Alloc and Free.
//
// Data. One 2 KiB slab per possible CPU (mapped once, metadata), holding per
// size class one 16-byte CpuList:
//   word  = head | count << 47   head: the first free object (null: empty);
//                                count: objects on the list (< 2^17). User
//                                addresses are below 2^47, so both fit one
//                                word and one store commits any change.
//   limit = max_length << 47     the list holds at most max_length objects
// Objects on a list are linked through their first word exactly as in the
// thread caches (free_list.h: encoded, checked when popped, plausibility-
// checked when flushed), so double frees and overwritten links are found
// the same way in both modes.
//
// Synchronisation. A CPU's lists are changed only by restartable sequences
// running on that CPU (cpu_cache.cc: pop, push, push of a chain, take all):
// each reads the CPU number from the thread's rseq area inside the
// sequence, works on that CPU's slab, and commits with one final store; the
// kernel restarts a sequence that is preempted, migrated or interrupted by
// a signal before its commit. No lock and no atomic read-modify-write. Other
// CPUs only read the words (statistics, idleness), never write them: a
// thread that drains CPU c's lists (background release, malloc_trim) first
// moves itself onto CPU c (sched_setaffinity) and then uses the same
// sequences.
//
// Bounds. Each CPU's lists hold at most SPANALLOC_CPU_CACHE_KB bytes: the
// budget is shared out between the classes once, at start-up (water-filling:
// no class gets more than two batches; what the small classes do not need
// goes to the larger ones). A thread cache's refill takes what the list has,
// up to what it asks for; the CPU's own refill takes up to a batch from the
// central list (central_list.h), one lock round trip; a push onto a full
// list flushes a batch back. A CPU with no slow path for the release delay
// counts as idle: the background release thread (scavenger.cc) drains it;
// malloc_trim drains every CPU.
// Threads that come and go: an exiting thread's cache goes to the central
// lists (ThreadCache::FlushAll), within reach of every CPU, not into its
// CPU's lists; and each list keeps its low-water count, the least it held
// after any refill since the last trim. When a thread exits, its CPU's
// lists give what stayed below their marks -- objects no refill needed
// since the previous exit on that CPU -- to the central lists, and the
// marks restart at the counts left. Without both, a program whose threads
// come and go keeps every list near its limit: a list's level is a random
// walk between flushes and refills, with a floor (an empty list refills
// from the central list) and a ceiling (the limit), so it drifts up to the
// ceiling (bench/threads' peak RSS at 1 thread: 7.4 MiB before, 4.4 MiB
// with both and the consumer rule of thread_cache.cc's Overflow). Only
// exits trim: a process whose threads live on keeps its lists busy
// (trimming every 16-64 slow paths cost livesets at 16-64 threads a third
// or more CPU time), and its idle CPUs are drained as above.
//
// Fork: every change is committed by one store, so the child finds each list
// whole; objects another thread held between a take and a push in the
// parent are lost to the child, never handed out twice. Thread exit: the
// exiting thread trims its CPU's lists (above); there is no per-thread
// state here.
#pragma once

#include <atomic>
#include <cstdint>

#include "common.h"

namespace spanalloc {

class CpuCache {
 public:
  // Chooses the mode from the options and what the process offers; maps the
  // slabs. From InitOnce (lifecycle.cc), after the options and the sampler.
  // When cpu mode cannot start, g_options.cache_mode becomes kThread (the
  // report shows the mode in force) and FallbackReason() says why.
  static void Init() noexcept;
  // Whether per-CPU caches are in use (set once by Init, before the heap is
  // marked initialised; never changes afterwards).
  static bool On() { return on_.load(std::memory_order_acquire); }
  // Why cpu mode is not in use when it was asked for (null when it is, or
  // when thread mode was asked for). For the report and the tests.
  static const char *FallbackReason() { return fallback_reason_; }

  // A thread cache's refill: up to n objects (n >= 1) off the current CPU's
  // list of class cl, linked from *head to *tail (tail's link null); returns
  // how many, 0 when the list is empty (the caller asks the central list).
  static int RemoveRange(uint32_t cl, void **head, void **tail, uint32_t n) noexcept;
  // A thread cache's flush: the chain head..tail of n objects onto the
  // current CPU's list. When the list is full, a whole batch goes into a
  // free transfer slot of the central list as it is; otherwise the list
  // first gives its newest batch to the central list; what still does not
  // fit goes there too.
  static void InsertRange(uint32_t cl, void *head, void *tail, uint32_t n) noexcept;
  // The calling thread is exiting and its cache was flushed (to the central
  // lists): trims the lists of the CPU it runs on (Bounds, above).
  static void ThreadExiting() noexcept;
  // malloc and free of class cl by a thread without a cache when On().
  // Alloc returns nullptr with errno ENOMEM when the OS refuses memory.
  SPANALLOC_SAMPLE_PATH static void *Alloc(uint32_t cl) noexcept;
  SPANALLOC_SAMPLE_PATH static void Free(void *p, uint32_t cl) noexcept;

  // Drains the lists of every CPU that had no slow path for idle_ms
  // (0: every CPU) into the central lists; a CPU counts as idle from the
  // first Drain call that sees no slow path since the one before.
  // Not thread-safe against itself (the scavenger's; malloc_trim's idle_ms
  // is 0, which reads no idleness state). Moves the calling thread from CPU
  // to CPU and back (its affinity is restored). Takes no lock itself; never
  // allocates. Returns the bytes drained.
  static uint64_t Drain(uint64_t idle_ms) noexcept;
  // Bytes of free objects in all CPUs' lists (racy reads: statistics).
  static uint64_t CachedBytes() noexcept;
  // CPUs with a slab (the possible CPUs), 0 when off.
  static uint32_t NumCpus() { return ncpu_; }
  // Bytes cached in CPU cpu's lists, and its list of class cl's limit
  // (tests).
  static uint64_t CachedBytesOn(uint32_t cpu) noexcept;
  static uint32_t MaxLength(uint32_t cl) noexcept;
  // Whether p is on class cl's list of the CPU the caller runs on (a double
  // free's report; reads the list outside any sequence, as far as its links
  // hold: a diagnosis, not a proof).
  static bool OnCurrentCpuList(const void *p, uint32_t cl) noexcept;
  // The CPU the calling thread runs on, as its rseq area says (-1: none).
  static int CurrentCpu() noexcept;

 private:
  static const char *Start() noexcept;  // null, or why cpu mode cannot start
  static std::atomic<bool> on_;
  static uint32_t ncpu_;
  static const char *fallback_reason_;
};

}  // namespace spanalloc
