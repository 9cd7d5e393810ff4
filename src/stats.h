// Statistics: gathered on demand from every layer (no counters on the fast
// paths), returned as struct spanalloc_stats or printed as a report.
#pragma once

#include "spanalloc.h"

namespace spanalloc {

void InitStats();  // registers the at-exit report when SPANALLOC_REPORT=1
void GatherStats(spanalloc_stats *out);
void PrintReport(int fd);

}  // namespace spanalloc
