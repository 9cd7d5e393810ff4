// The allocator report: the statistics declared in stats.h written as text
// (spanalloc_print_report, malloc_stats), as JSON
// (spanalloc_print_report_json) and as glibc's malloc_info XML; and the
// report at exit (SPANALLOC_REPORT, SPANALLOC_REPORT_FILE).
//
// The exit report's destination is kept open from start-up: a program may
// close stderr before spanalloc's exit handler runs (coreutils does, in its
// own atexit handler), so InitReport duplicates stderr to a high,
// close-on-exec descriptor and the exit report writes there (or to stderr
// again if the program has since put another file on that number).
// Nothing here allocates except malloc_info's stdio.
#pragma once

#include <cstdio>

namespace spanalloc {

// After LoadOptions: when an exit report is asked for, keeps its destination
// open and registers the exit handler. Never allocates.
void InitReport();
void PrintReport(int fd);
void PrintReportJson(int fd);
// malloc_info(0, f): glibc's XML shape, spanalloc's figures. Returns 0, or
// -1 when f reports a write error.
int PrintMallocInfo(FILE *f);

}  // namespace spanalloc
