// See os_memory.h for the memory-state model.
#include "os_memory.h"

#include <sys/mman.h>

#include <cerrno>

namespace spanalloc {

constinit OsCounters g_os_counters;

namespace {
#ifdef SPANALLOC_OS_FAULT_INJECTION
std::atomic<uint64_t> g_fault_skip{0}, g_fault_fail{0}, g_fault_count{0};
// True when this call must fail (os_memory.h).
bool FaultNow() {
  if (g_fault_fail.load(std::memory_order_relaxed) == 0) return false;
  uint64_t skip = g_fault_skip.load(std::memory_order_relaxed);
  while (skip > 0)
    if (g_fault_skip.compare_exchange_weak(skip, skip - 1, std::memory_order_relaxed)) return false;
  uint64_t fail = g_fault_fail.load(std::memory_order_relaxed);
  while (fail > 0)
    if (g_fault_fail.compare_exchange_weak(fail, fail - 1, std::memory_order_relaxed)) {
      g_fault_count.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  return false;
}
#else
constexpr bool FaultNow() { return false; }
#endif

void *MapRaw(size_t bytes, int prot) {
  if (FaultNow()) return nullptr;
  void *p = mmap(nullptr, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Maps bytes + align at `prot` and unmaps what lies before the first
// `align` boundary and after the `bytes` that follow it; nullptr on failure.
void *MapAligned(size_t bytes, size_t align, int prot) {
  size_t padded = bytes + align;
  char *raw = static_cast<char *>(MapRaw(padded, prot));
  if (raw == nullptr) return nullptr;
  uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(uintptr_t(align) - 1);
  size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head) munmap(raw, head);
  size_t tail = padded - head - bytes;
  if (tail) munmap(reinterpret_cast<char *>(start) + bytes, tail);
  return reinterpret_cast<void *>(start);
}
}  // namespace

void *OsMap(size_t bytes, size_t align) {
  int saved = errno;  // callers decide what errno the user sees
  void *p = MapRaw(bytes, PROT_READ | PROT_WRITE);
  if (p != nullptr && (reinterpret_cast<uintptr_t>(p) & (align - 1)) != 0) {
    munmap(p, bytes);  // not aligned: over-map and trim instead
    p = MapAligned(bytes, align, PROT_READ | PROT_WRITE);
  }
  errno = saved;
  if (p != nullptr) {
    g_os_counters.mapped.fetch_add(bytes, std::memory_order_relaxed);
    g_os_counters.maps.fetch_add(1, std::memory_order_relaxed);
  }
  return p;
}

bool OsAdviseHugePages(void *p, size_t bytes) {
  int saved = errno;
  bool ok = madvise(p, bytes, MADV_HUGEPAGE) == 0;
  errno = saved;
  if (ok) g_os_counters.hugepage_advice.fetch_add(1, std::memory_order_relaxed);
  return ok;
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
  if (FaultNow()) return false;
  int saved = errno;
  bool ok = mremap(p, old_bytes, new_bytes, 0) != MAP_FAILED;
  errno = saved;
  if (ok) g_os_counters.mapped.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed);
  return ok;
}

void *OsReserve(size_t bytes, size_t align) {
  int saved = errno;
  void *target = MapAligned(bytes, align, PROT_NONE);
  errno = saved;
  return target;
}

bool OsRemapMoveTo(void *p, size_t old_bytes, size_t new_bytes, void *target) {
  if (FaultNow()) return false;
  int saved = errno;
  // The move replaces the reservation.
  bool ok = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, target) != MAP_FAILED;
  errno = saved;
  if (ok) g_os_counters.mapped.fetch_add(new_bytes - old_bytes, std::memory_order_relaxed);
  return ok;
}

void OsUnreserve(void *target, size_t bytes) {
  int saved = errno;
  munmap(target, bytes);
  errno = saved;
}

bool OsMapFixed(void *p, size_t bytes) {
  // Never MAP_FIXED: between the move and this refill the hole is free
  // address space, and any other mmap of the process (a thread's stack, a
  // library, a file) may have landed in it; MAP_FIXED would silently replace
  // that mapping. NOREPLACE fails instead, and the caller forgets the range.
  bool taken;
  return OsMapAt(p, bytes, &taken) != nullptr;
}

void *OsMapAt(void *at, size_t bytes, bool *taken) {
  *taken = false;
  if (FaultNow()) return nullptr;
  int saved = errno;
  void *p = mmap(at, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                 -1, 0);
  *taken = p == MAP_FAILED && errno == EEXIST;
  errno = saved;
  if (p == MAP_FAILED) return nullptr;
  if (p != at) {  // a kernel older than 4.17 takes the address as a hint only
    munmap(p, bytes);
    *taken = true;
    return nullptr;
  }
  g_os_counters.mapped.fetch_add(bytes, std::memory_order_relaxed);
  g_os_counters.maps.fetch_add(1, std::memory_order_relaxed);
  return p;
}

#ifdef SPANALLOC_OS_FAULT_INJECTION
void OsInjectFaults(uint64_t skip, uint64_t fail) {
  g_fault_fail.store(0, std::memory_order_relaxed);
  g_fault_skip.store(skip, std::memory_order_relaxed);
  g_fault_fail.store(fail, std::memory_order_relaxed);
}
uint64_t OsInjectedFailures() { return g_fault_count.load(std::memory_order_relaxed); }
#endif
bool OsProtect(void *p, size_t bytes, bool accessible) {
  int saved = errno;
  bool ok = mprotect(p, bytes, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
  errno = saved;
  return ok;
}

}  // namespace spanalloc
