#include "page_map.h"

#include <algorithm>
#include <initializer_list>

#include "metadata_alloc.h"
#include "os_memory.h"

namespace spanalloc {

ClassMap g_class_map;
std::atomic<SpanLeaf *> g_span_root[size_t{1} << kRootBits];

bool PageMapEnsure(PageId first, Length n) {
  PageId last = first + n - 1;
  if (last >> (kRootBits + kLeafBits)) return false;
  for (PageId r = first >> kLeafBits; r <= (last >> kLeafBits); r++) {
    if (g_span_root[r].load(std::memory_order_relaxed) != nullptr) continue;
    // Leaves are mapped lazily-resident: only touched pages cost memory.
    auto *sl = static_cast<SpanLeaf *>(OsMap(sizeof(SpanLeaf), kPageSize));
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
  constexpr uintptr_t kOsPage = 4096;
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
