#include "page_map.h"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <initializer_list>

#include "metadata_alloc.h"
#include "os_memory.h"

namespace spanalloc {

ClassMap g_class_map;
std::atomic<SpanLeaf *> g_span_root[size_t{1} << kRootBits];
uint64_t g_flat_pages = 0;

namespace {
// FlatMapOnce's state: 0 not tried, 1 mapping, 2 done (mapped or not).
std::atomic<int> g_flat_state{0};
// The next address PageMapHeapMap tries; the flat view's range ends at
// g_flat_pages << kPageShift.
std::atomic<uintptr_t> g_flat_next{kFlatHeapStart};

constexpr uintptr_t kSlotBytes = uintptr_t{1} << (kLeafBits + kPageShift);  // address range of one root slot

// Maps the flat view at kFlatMapAddress (once, by FlatMapOnce). Its range
// ends at 64 GiB, or below 16 times the address-space limit (the view then
// costs at most 1/64 of it), and halves while the kernel refuses or the
// address is partly taken; none if it would end before kFlatHeapStart + one
// root slot.
void FlatMapInit() {
  uintptr_t end = kFlatMaxEnd;
  struct rlimit lim {};
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < end / 16)
    end = uintptr_t(lim.rlim_cur) * 16 & ~(kSlotBytes - 1);
  for (; end >= kFlatHeapStart + kSlotBytes; end = (end / 2) & ~(kSlotBytes - 1)) {
    size_t bytes = (end >> kPageShift) * sizeof(uint64_t);
    bool taken;
    auto *map = static_cast<uint64_t *>(OsMapAt(reinterpret_cast<void *>(kFlatMapAddress), bytes, &taken));
    if (map == nullptr) continue;
    g_metadata_bytes.fetch_add(bytes, std::memory_order_relaxed);
    for (uintptr_t r = 0; r < end / kSlotBytes; r++)
      __atomic_store_n(&g_class_map.root[r],
                       reinterpret_cast<uintptr_t>(map + r * kLeafPages) - reinterpret_cast<uintptr_t>(&g_class_map.zero_leaf),
                       __ATOMIC_RELEASE);
    __atomic_store_n(&g_flat_pages, end >> kPageShift, __ATOMIC_RELEASE);
    return;
  }
}

// The flat view exists (or never will) before the heap's first mapping, so
// that the first mapping already lands in it, and before any class leaf is
// made for its root slots. The heap grows outside its lock, so two threads
// may come here at once: the second waits for the first (a mmap and a few
// stores), for at most about a thousand yields -- a fork child of a thread
// stopped mid-way would wait forever -- and then goes on without the view.
void FlatMapOnce() {
  if (g_flat_state.load(std::memory_order_acquire) == 2) return;
  int expected = 0;
  if (g_flat_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    FlatMapInit();
    g_flat_state.store(2, std::memory_order_release);
    return;
  }
  for (int i = 0; i < 1000 && g_flat_state.load(std::memory_order_acquire) != 2; i++) sched_yield();
}
}  // namespace

void *PageMapHeapMap(size_t bytes, size_t align) {
  FlatMapOnce();
  uintptr_t end = __atomic_load_n(&g_flat_pages, __ATOMIC_ACQUIRE) << kPageShift;
  // A few tries past ranges another mapping took; then anywhere, for good if
  // the range seems taken throughout (as AddressSanitizer's shadow takes it).
  uintptr_t step = (bytes + kHugePageSize - 1) & ~(kHugePageSize - 1);  // keeps every hint 2 MiB-aligned
  for (int tries = 0;; tries++) {
    uintptr_t at = g_flat_next.fetch_add(step, std::memory_order_relaxed);
    if (at + step > end || at + step < at) break;
    if (tries == 8) {
      g_flat_next.store(end, std::memory_order_relaxed);
      break;
    }
    bool taken;
    if (void *p = OsMapAt(reinterpret_cast<void *>(at), bytes, &taken)) return p;
    if (!taken) return nullptr;  // the kernel refused memory: so would it anywhere
  }
  return OsMap(bytes, align);
}

bool PageMapEnsure(PageId first, Length n) {
  PageId last = first + n - 1;
  if (last >> (kRootBits + kLeafBits)) return false;
  FlatMapOnce();
  for (PageId r = first >> kLeafBits; r <= (last >> kLeafBits); r++) {
    if (g_span_root[r].load(std::memory_order_relaxed) != nullptr) continue;
    // Leaves are mapped lazily-resident: only touched pages cost memory. The
    // flat view's slots have their class leaves already.
    bool flat = r < (g_flat_pages >> kLeafBits);
    auto *sl = static_cast<SpanLeaf *>(OsMap(sizeof(SpanLeaf), kPageSize));
    if (flat) {
      if (sl == nullptr) return false;
      g_metadata_bytes.fetch_add(sizeof(SpanLeaf), std::memory_order_relaxed);
      g_span_root[r].store(sl, std::memory_order_release);
      continue;
    }
    auto *cl = static_cast<ClassLeaf *>(OsMap(sizeof(ClassLeaf), kPageSize));
    if (sl == nullptr || cl == nullptr) {
      if (sl) OsUnmap(sl, sizeof(SpanLeaf));
      if (cl) OsUnmap(cl, sizeof(ClassLeaf));
      return false;
    }
    g_metadata_bytes.fetch_add(sizeof(SpanLeaf) + sizeof(ClassLeaf), std::memory_order_relaxed);
    __atomic_store_n(&g_class_map.root[r], reinterpret_cast<uintptr_t>(cl) - reinterpret_cast<uintptr_t>(&g_class_map.zero_leaf),
                     __ATOMIC_RELEASE);
    g_span_root[r].store(sl, std::memory_order_release);
  }
  return true;
}

void PageMapSetSpan(PageId page, Span *s) {
  SpanLeaf *leaf = g_span_root[page >> kLeafBits].load(std::memory_order_relaxed);
  __atomic_store_n(&leaf->span[page & (kLeafPages - 1)], s, __ATOMIC_RELAXED);
}

void PageMapSetClass(PageId page, uint64_t entry) {
  auto *leaf = reinterpret_cast<ClassLeaf *>(reinterpret_cast<uintptr_t>(&g_class_map.zero_leaf) +
                                             g_class_map.root[page >> kLeafBits]);
  __atomic_store_n(&leaf->entry[page & (kLeafPages - 1)], entry, __ATOMIC_RELAXED);
}

}  // namespace spanalloc

namespace spanalloc {

void PageMapSetRange(PageId first, Length n, Span *s, uint64_t entry, bool set_class) {
  PageId page = first, end = first + n;
  while (page < end) {
    PageId leaf_end = std::min<PageId>(end, (page | (kLeafPages - 1)) + 1);
    SpanLeaf *sl = g_span_root[page >> kLeafBits].load(std::memory_order_relaxed);
    auto *cl = reinterpret_cast<ClassLeaf *>(reinterpret_cast<uintptr_t>(&g_class_map.zero_leaf) +
                                             g_class_map.root[page >> kLeafBits]);
    for (; page < leaf_end; page++) {
      __atomic_store_n(&sl->span[page & (kLeafPages - 1)], s, __ATOMIC_RELAXED);
      if (set_class) __atomic_store_n(&cl->entry[page & (kLeafPages - 1)], entry, __ATOMIC_RELAXED);
    }
  }
}

void PageMapReleaseInterior(PageId first, Length n) {
  if (n < 3) return;
  PageId page = first + 1, end = first + n - 1;
  while (page < end) {
    PageId leaf_end = std::min<PageId>(end, (page | (kLeafPages - 1)) + 1);
    SpanLeaf *sl = g_span_root[page >> kLeafBits].load(std::memory_order_relaxed);
    auto *cl = reinterpret_cast<ClassLeaf *>(reinterpret_cast<uintptr_t>(&g_class_map.zero_leaf) +
                                             g_class_map.root[page >> kLeafBits]);
    size_t i = page & (kLeafPages - 1), j = i + (leaf_end - page);
    for (uintptr_t base : {reinterpret_cast<uintptr_t>(sl->span), reinterpret_cast<uintptr_t>(cl->entry)}) {
      uintptr_t a = (base + i * 8 + kOsPage - 1) & ~(kOsPage - 1), b = (base + j * 8) & ~(kOsPage - 1);
      if (a < b) OsRelease(reinterpret_cast<void *>(a), b - a);
    }
    page = leaf_end;
  }
}

}  // namespace spanalloc
