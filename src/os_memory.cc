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

}  // namespace spanalloc
