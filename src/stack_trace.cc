#include "stack_trace.h"

#include <execinfo.h>
#include <link.h>

#include "common.h"
#include "fd_writer.h"

namespace spanalloc {

namespace {

// Executable range of the shared object that holds spanalloc; empty when
// spanalloc is linked into the main program. Written once by StackTraceInit.
uintptr_t g_self_lo = 0, g_self_hi = 0;

SPANALLOC_RARE int FindSelf(struct dl_phdr_info *info, size_t, void *) {
  uintptr_t me = reinterpret_cast<uintptr_t>(&CollectStack);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (me < lo || me >= hi) continue;
    if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
      g_self_lo = lo;
      g_self_hi = hi;
    }
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace spanalloc

// The bounds of the SPANALLOC_SAMPLE_PATH section, from the linker.
extern "C" char __start_spanalloc_sample_path[] __attribute__((visibility("hidden")));
extern "C" char __stop_spanalloc_sample_path[] __attribute__((visibility("hidden")));

namespace spanalloc {
namespace {

inline bool IsOwnFrame(uintptr_t pc) {
  return (pc >= g_self_lo && pc < g_self_hi) || (pc >= reinterpret_cast<uintptr_t>(__start_spanalloc_sample_path) &&
                                                 pc < reinterpret_cast<uintptr_t>(__stop_spanalloc_sample_path));
}

}  // namespace

SPANALLOC_RARE void StackTraceInit() {
  void *warm[4];
  backtrace(warm, 4);
  dl_iterate_phdr(FindSelf, nullptr);
}

int CollectStack(uintptr_t *pcs, int max) {
  constexpr int kRaw = 96;
  void *raw[kRaw];
  int n = backtrace(raw, kRaw);
  int i = 0;
  while (i < n && IsOwnFrame(reinterpret_cast<uintptr_t>(raw[i]))) i++;
  int depth = 0;
  for (; i < n && depth < max; i++) pcs[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  return depth;
}

SPANALLOC_RARE void PrintStack(int fd, const uintptr_t *pcs, int depth) {
  if (depth == 0) {
    FdWriter w(fd);
    w.Str("    (no frames)\n");
    return;
  }
  // backtrace_symbols_fd writes "module(symbol+0x12) [0xaddr]" per frame
  // without allocating; the frame numbers go in front, one frame at a time.
  for (int i = 0; i < depth; i++) {
    {
      FdWriter w(fd);
      w.Str("    #").Dec(uint64_t(i)).Str(" ");
    }
    void *pc = reinterpret_cast<void *>(pcs[i]);
    backtrace_symbols_fd(&pc, 1, fd);
  }
}

}  // namespace spanalloc
