#include "metadata_alloc.h"

#include <algorithm>
#include <cstring>

namespace spanalloc {

constinit std::atomic<uint64_t> g_metadata_bytes{0};

void *FixedAllocBase::Alloc(size_t size) {
  MutexLock l(lock_);
  void *p;
  if (free_ != nullptr) {
    p = free_;
    free_ = free_->next;
    memset(p, 0, size);
  } else if (nruns_ > 0) {
    Run &r = runs_[nruns_ - 1];
    p = r.next;
    r.next += size;
    if (r.next >= r.end) nruns_--;
    memset(p, 0, size);  // its ends may lie on pages that were not released
  } else {
    if (bump_left_ < size) {
      size_t chunk = size > kChunk ? RoundUp(size, kPageSize) : kChunk;
      bump_ = static_cast<char *>(OsMap(chunk, kPageSize));  // zero-filled
      if (bump_ == nullptr) {
        bump_left_ = 0;
        return nullptr;
      }
      bump_left_ = chunk;
      g_metadata_bytes.fetch_add(chunk, std::memory_order_relaxed);
      if (chunk == kChunk && nchunks_ < kMaxChunks) chunks_[nchunks_++] = bump_;
    }
    p = bump_;
    bump_ += size;
    bump_left_ -= size;
  }
  in_use_++;
  return p;
}

void FixedAllocBase::Free(void *p) {
  MutexLock l(lock_);
  auto *node = static_cast<FreeNode *>(p);
  node->next = free_;
  free_ = node;
  in_use_--;
}

void FixedAllocBase::Free(void *const *p, size_t n) {
  if (n == 0) return;
  MutexLock l(lock_);
  for (size_t i = 0; i < n; i++) {
    auto *node = static_cast<FreeNode *>(p[i]);
    node->next = free_;
    free_ = node;
  }
  in_use_ -= n;
}

// Marks the free objects (free list, released runs, the unused bump tail)
// in a bitmap per tracked chunk, releases every run of OS pages whose
// overlapping objects are all free, and rebuilds the free list and the runs.
size_t FixedAllocBase::ReleaseFreePages(size_t size) {
  MutexLock l(lock_);
  // (An object of at most one OS page overlaps at most two pages, so no
  // object can fall in two runs.)
  if (nchunks_ == 0 || size > kOsPage) return 0;
  const size_t per_chunk = kChunk / size;
  const size_t words = (per_chunk + 63) / 64;
  size_t map_bytes = (size_t(nchunks_) * words * 8 + kOsPage - 1) & ~(kOsPage - 1);
  auto *bits = static_cast<uint64_t *>(OsMap(map_bytes, kOsPage));  // zero-filled scratch
  if (bits == nullptr) return 0;
  // Chunks in address order, for the lookups below.
  for (int i = 1; i < nchunks_; i++)
    for (int j = i; j > 0 && chunks_[j - 1] > chunks_[j]; j--) std::swap(chunks_[j - 1], chunks_[j]);
  auto chunk_of = [&](const char *p) -> int {
    int lo = 0, hi = nchunks_ - 1;
    while (lo <= hi) {
      int mid = (lo + hi) / 2;
      if (p < chunks_[mid]) hi = mid - 1;
      else if (p >= chunks_[mid] + kChunk) lo = mid + 1;
      else return mid;
    }
    return -1;
  };
  auto mark = [&](const char *p, bool set) {
    int c = chunk_of(p);
    if (c < 0) return false;
    size_t idx = size_t(p - chunks_[c]) / size;
    if (set) bits[size_t(c) * words + idx / 64] |= uint64_t{1} << (idx % 64);
    return ((bits[size_t(c) * words + idx / 64] >> (idx % 64)) & 1) != 0;
  };
  for (FreeNode *n = free_; n != nullptr; n = n->next) mark(reinterpret_cast<char *>(n), true);
  for (int i = 0; i < nruns_; i++)
    for (char *p = runs_[i].next; p < runs_[i].end; p += size) mark(p, true);
  for (char *p = bump_; bump_ != nullptr && p + size <= bump_ + bump_left_; p += size) mark(p, true);
  // Every object of the runs is free (marked); the old runs are rebuilt.
  Run old_runs[kMaxRuns];
  int old_nruns = nruns_;
  for (int i = 0; i < nruns_; i++) old_runs[i] = runs_[i];
  nruns_ = 0;
  size_t released = 0;
  auto all_free = [&](int c, size_t from, size_t to) {  // objects [from, to] of chunk c
    for (size_t i = from; i <= to; i++)
      if (!((bits[size_t(c) * words + i / 64] >> (i % 64)) & 1)) return false;
    return true;
  };
  for (int c = 0; c < nchunks_ && nruns_ < kMaxRuns; c++) {
    char *base = chunks_[c];
    const uintptr_t end_used = reinterpret_cast<uintptr_t>(base) + per_chunk * size;
    uintptr_t page = reinterpret_cast<uintptr_t>(base);
    while (page < end_used && nruns_ < kMaxRuns) {
      // Extend a run of pages whose overlapping objects are all free.
      uintptr_t run_end = page;
      while (run_end < end_used) {
        size_t from = (run_end - reinterpret_cast<uintptr_t>(base)) / size;
        size_t to = (std::min(run_end + kOsPage, end_used) - 1 - reinterpret_cast<uintptr_t>(base)) / size;
        if (!all_free(c, from, to)) break;
        run_end += kOsPage;
      }
      if (run_end == page) {
        page += kOsPage;
        continue;
      }
      size_t from = (page - reinterpret_cast<uintptr_t>(base)) / size;
      size_t to = (std::min(run_end, end_used) - 1 - reinterpret_cast<uintptr_t>(base)) / size;
      uintptr_t rel_end = std::min(run_end, (reinterpret_cast<uintptr_t>(base) + kChunk) & ~(kOsPage - 1));
      if (rel_end > page && OsRelease(reinterpret_cast<void *>(page), rel_end - page)) {
        released += rel_end - page;
        runs_[nruns_++] = Run{base + from * size, base + (to + 1) * size};
        for (size_t i = from; i <= to; i++) bits[size_t(c) * words + i / 64] &= ~(uint64_t{1} << (i % 64));
      }
      page = run_end;
    }
  }
  // The free list keeps what is still marked (not in a new run), and so do
  // the objects of the old runs that no new run covers.
  FreeNode *list = nullptr;
  for (FreeNode *n = free_; n != nullptr;) {
    FreeNode *next = n->next;
    if (mark(reinterpret_cast<char *>(n), false)) {
      n->next = list;
      list = n;
    }
    n = next;
  }
  for (int i = 0; i < old_nruns; i++)
    for (char *p = old_runs[i].next; p < old_runs[i].end; p += size)
      if (mark(p, false)) {
        auto *n = reinterpret_cast<FreeNode *>(p);
        n->next = list;
        list = n;
      }
  free_ = list;
  // The bump tail's objects are in the runs or still in the bump region:
  // a tail object inside a new run would be handed out twice; give up the
  // tail (it is free memory either way).
  if (bump_ != nullptr && chunk_of(bump_) >= 0) bump_left_ = 0;
  OsUnmap(bits, map_bytes);
  return released;
}

}  // namespace spanalloc
