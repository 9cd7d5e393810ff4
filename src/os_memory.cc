// See os_memory.h for the memory-state model.
#include "os_memory.h"

#include <sys/mman.h>

#include <cerrno>

namespace spanalloc {

constinit OsCounters g_os_counters;

namespace {
void *MapRaw(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
}  // namespace

void *OsMap(size_t bytes, size_t align) {
  int saved = errno;  // callers decide what errno the user sees
  void *p = MapRaw(bytes);
  if (p != nullptr && (reinterpret_cast<uintptr_t>(p) & (align - 1)) != 0) {
    // Over-map by `align` and trim both ends to get the alignment.
    munmap(p, bytes);
    size_t padded = bytes + align;
    char *raw = static_cast<char *>(MapRaw(padded));
    if (raw == nullptr) {
      p = nullptr;
    } else {
      uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(uintptr_t(align) - 1);
      size_t head = start - reinterpret_cast<uintptr_t>(raw);
      if (head) munmap(raw, head);
      size_t tail = padded - head - bytes;
      if (tail) munmap(reinterpret_cast<char *>(start) + bytes, tail);
      p = reinterpret_cast<void *>(start);
    }
  }
  errno = saved;
  if (p != nullptr) {
    g_os_counters.mapped.fetch_add(bytes, std::memory_order_relaxed);
    g_os_counters.maps.fetch_add(1, std::memory_order_relaxed);
  }
  return p;
}

bool OsRelease(void *p, size_t bytes) {
  int saved = errno;
  bool ok = madvise(p, bytes, MADV_DONTNEED) == 0;
  errno = saved;
  if (ok) {
    g_os_counters.releases.fetch_add(1, std::memory_order_relaxed);
    g_os_counters.released_bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  return ok;
}

void OsUnmap(void *p, size_t bytes) {
  int saved = errno;
  if (munmap(p, bytes) == 0) g_os_counters.mapped.fetch_sub(bytes, std::memory_order_relaxed);
  errno = saved;
}

bool OsRemapInPlace(void *p, size_t old_bytes, size_t new_bytes) {
  int saved = errno;
  bool ok = mremap(p, old_bytes, new_bytes, 0) != MAP_FAILED;
  errno = saved;
  if (ok) g_os_counters.mapped.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed);
  return ok;
}

void *OsRemapMove(void *p, size_t old_bytes, size_t new_bytes, size_t align) {
  int saved = errno;
  // Reserve an aligned target, then move the pages onto it.
  size_t padded = new_bytes + align;
  void *raw = mmap(nullptr, padded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void *result = nullptr;
  if (raw != MAP_FAILED) {
    uintptr_t target = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(uintptr_t(align) - 1);
    void *q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void *>(target));
    size_t head = target - reinterpret_cast<uintptr_t>(raw);
    if (q == MAP_FAILED) {
      munmap(raw, padded);
    } else {
      if (head) munmap(raw, head);
      size_t tail = padded - head - new_bytes;
      if (tail) munmap(reinterpret_cast<char *>(target) + new_bytes, tail);
      result = q;
      g_os_counters.mapped.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed);
    }
  }
  errno = saved;
  return result;
}

bool OsMapFixed(void *p, size_t bytes) {
  int saved = errno;
  void *q = mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  errno = saved;
  if (q == MAP_FAILED) return false;
  g_os_counters.mapped.fetch_add(bytes, std::memory_order_relaxed);
  g_os_counters.maps.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace spanalloc
