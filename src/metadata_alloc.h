// Metadata allocator (Go's fixalloc): fixed-size objects for spanalloc's own
// structures (spans, thread caches). Memory comes from OsMap in 256 KiB
// chunks and is recycled through a free list; it never comes from malloc.
// ReleaseFreePages (malloc_trim) gives back the OS pages that hold only free
// objects: those objects leave the free list for "released runs" (ranges of
// whole objects), which Alloc uses, zeroed, before mapping a new chunk.
//
// Every field starts at zero (the object size is FixedAlloc<T>'s constant,
// passed in), so a constinit FixedAlloc sits in .bss: its pages cost no RSS
// until written. (A .data page is mapped from the library file on its first
// read, its neighbours with it; 12 KiB per allocator.)
#pragma once

#include <atomic>
#include <cstddef>
#include <new>

#include "common.h"
#include "lock.h"
#include "os_memory.h"

namespace spanalloc {

// Bytes of metadata chunks mapped so far (for statistics).
extern std::atomic<uint64_t> g_metadata_bytes;

class FixedAllocBase {
 public:
  constexpr FixedAllocBase() = default;
  // Returns zeroed memory for one object of `size` bytes (the same size on
  // every call), or nullptr when the OS refuses.
  void *Alloc(size_t size);
  void Free(void *p);
  void Free(void *const *p, size_t n);  // n objects, under one lock
  // Releases the pages of tracked chunks that hold only free objects;
  // returns the bytes released. Takes the lock; makes madvise calls under it
  // (malloc_trim only).
  size_t ReleaseFreePages(size_t size);
  size_t in_use() const { return in_use_; }
  Mutex &lock() { return lock_; }  // for fork: rank kMetadata, taken last (lock.h)

  static constexpr size_t RoundUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

 private:
  static constexpr size_t kChunk = 256 * 1024;
  static constexpr int kMaxChunks = 1024;  // chunks tracked for release (256 MiB)
  static constexpr int kMaxRuns = 256;
  struct FreeNode { FreeNode *next; };
  // Free objects [next, end) whose pages were released (read as zero).
  struct Run {
    char *next;
    char *end;
  };
  Mutex lock_{LockRank::kMetadata};
  // Protected by lock_:
  FreeNode *free_ = nullptr;  // recycled objects
  char *bump_ = nullptr;      // unused tail of the current chunk
  size_t bump_left_ = 0;
  size_t in_use_ = 0;
  char *chunks_[kMaxChunks] = {};  // kChunk-sized chunks, in mapping order
  int nchunks_ = 0;
  Run runs_[kMaxRuns] = {};
  int nruns_ = 0;
};

template <typename T>
class FixedAlloc : public FixedAllocBase {
 public:
  static constexpr size_t kSize = RoundUp(sizeof(T), alignof(T) < 16 ? 16 : alignof(T));
  constexpr FixedAlloc() = default;
  T *New() {
    void *p = Alloc(kSize);
    // Objects lie at multiples of kSize (a multiple of alignof(T)) from
    // page-aligned chunks: Span's 64-byte alignment holds (span.h).
    SPANALLOC_DCHECK(reinterpret_cast<uintptr_t>(p) % alignof(T) == 0);
    return p ? new (p) T() : nullptr;
  }
  size_t ReleaseFreePages() { return FixedAllocBase::ReleaseFreePages(kSize); }
  void Delete(T *t) {
    t->~T();
    Free(t);
  }
  void Delete(T *const *t, size_t n) {
    for (size_t i = 0; i < n; i++) t[i]->~T();
    Free(reinterpret_cast<void *const *>(t), n);
  }
};

}  // namespace spanalloc
