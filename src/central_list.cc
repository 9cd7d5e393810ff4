#include "central_list.h"

#include "central_list_impl.h"
#include "free_list.h"
#include "page_heap.h"
#include "page_map.h"

namespace spanalloc {

// ---- the production Env: plain calls, inlined into the list ---------------

Span *CentralListEnv::AllocSpan(Length pages, uint32_t cl) { return g_page_heap.AllocSmall(pages, cl); }
void CentralListEnv::FreeSpan(Span *s) { g_page_heap.Free(s); }
void CentralListEnv::FreeSpans(Span *const *spans, int n) { g_page_heap.Free(spans, size_t(n)); }
Span *CentralListEnv::SpanOf(const void *p) const { return spanalloc::SpanOf(p); }
bool CentralListEnv::LinkIsValid(const void *link, uint32_t cl) const { return spanalloc::LinkIsValid(link, cl); }
uint32_t CentralListEnv::ListClass(const void *list) const {
  return uint32_t(static_cast<const CentralList *>(list) - g_central_lists.list);
}

template class CentralListT<CentralListEnv>;

constinit CentralLists g_central_lists;

}  // namespace spanalloc
