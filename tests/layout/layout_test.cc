// A small program under LD_PRELOAD=libspanalloc.so: after what a typical
// program does with the heap, none of the library's rare code
// (SPANALLOC_RARE, src/common.h) and none of its unwind tables may be
// resident, since src/layout.ld gives them mappings of their own. Then it runs
// rare code (malloc_stats) and checks that this does map some, so that the
// check is seen to work. Exit 0: passed; 1: failed; 77: skipped (no
// /proc/self/pagemap).
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

struct Library {
  const char *path = nullptr;
  uintptr_t base = 0;
};

int FindSpanalloc(struct dl_phdr_info *info, size_t, void *data) {
  if (info->dlpi_name != nullptr && strstr(info->dlpi_name, "libspanalloc") != nullptr) {
    auto *lib = static_cast<Library *>(data);
    lib->path = info->dlpi_name;
    lib->base = info->dlpi_addr;
    return 1;
  }
  return 0;
}

struct Range {
  uintptr_t addr = 0;  // address in the file's layout (add the load base)
  size_t size = 0;
};

// The section called `name` in the library's file, from its section headers.
bool FindSection(const char *path, const char *name, Range *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  Elf64_Ehdr eh;
  bool found = false;
  if (pread(fd, &eh, sizeof eh, 0) == ssize_t(sizeof eh) && eh.e_shentsize == sizeof(Elf64_Shdr)) {
    Elf64_Shdr strtab;
    off_t shoff = off_t(eh.e_shoff);
    if (pread(fd, &strtab, sizeof strtab, shoff + off_t(eh.e_shstrndx) * off_t(sizeof strtab)) ==
        ssize_t(sizeof strtab)) {
      for (unsigned i = 0; i < eh.e_shnum && !found; i++) {
        Elf64_Shdr sh;
        char sname[64] = {};
        if (pread(fd, &sh, sizeof sh, shoff + off_t(i) * off_t(sizeof sh)) != ssize_t(sizeof sh)) break;
        if (pread(fd, sname, sizeof sname - 1, off_t(strtab.sh_offset + sh.sh_name)) <= 0) break;
        if (strcmp(sname, name) == 0) {
          out->addr = sh.sh_addr;
          out->size = sh.sh_size;
          found = true;
        }
      }
    }
  }
  close(fd);
  return found;
}

// Pages wholly inside [lo, lo + size) that this process has mapped (present
// in its page tables, /proc/self/pagemap bit 63); -1 if unreadable.
long ResidentPages(int pagemap, uintptr_t lo, size_t size) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  long n = 0;
  for (uintptr_t a = (lo + page - 1) & ~(page - 1); a + page <= lo + size; a += page) {
    uint64_t entry;
    if (pread(pagemap, &entry, sizeof entry, off_t(a / page * sizeof entry)) != ssize_t(sizeof entry)) return -1;
    n += (entry >> 63) & 1;
  }
  return n;
}

void *Worker(void *) {
  void *blocks[256];
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 256; i++) blocks[i] = malloc(size_t(16 + 48 * i));
    for (int i = 0; i < 256; i++) free(blocks[i]);
  }
  return nullptr;
}

// What a typical program does: every size range, the C and C++ interfaces,
// a second thread, memory given back.
void TypicalWork() {
  void *blocks[512];
  for (int i = 0; i < 512; i++) blocks[i] = malloc(size_t(8 + 64 * i));
  for (int i = 0; i < 512; i += 2) free(blocks[i]);
  for (int i = 1; i < 512; i += 2) blocks[i] = realloc(blocks[i], size_t(100 + 200 * i));
  for (int i = 1; i < 512; i += 2) free(blocks[i]);
  void *big = malloc(size_t{8} << 20);
  memset(big, 1, 4096);
  big = realloc(big, size_t{16} << 20);
  free(big);
  void *z = calloc(1000, 24);
  free(z);
  void *a = nullptr;
  if (posix_memalign(&a, 4096, 10000) == 0) free(a);
  for (int i = 0; i < 1000; i++) delete[] new char[size_t(i + 1)];
  for (int i = 0; i < 100; i++) delete new long(i);
  delete[] new (std::nothrow) double[5000];
  pthread_t t;
  if (pthread_create(&t, nullptr, Worker, nullptr) == 0) pthread_join(t, nullptr);
}

}  // namespace

int main() {
  TypicalWork();
  Library lib;
  dl_iterate_phdr(FindSpanalloc, &lib);
  if (lib.path == nullptr) {
    fprintf(stderr, "layout_test: libspanalloc is not loaded (run with LD_PRELOAD)\n");
    return 1;
  }
  Range rare, eh;
  if (!FindSection(lib.path, "spanalloc_rare", &rare) || !FindSection(lib.path, ".eh_frame", &eh)) {
    fprintf(stderr, "layout_test: %s has no spanalloc_rare or .eh_frame section\n", lib.path);
    return 1;
  }
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  long probe = pagemap < 0 ? -1 : ResidentPages(pagemap, rare.addr + lib.base, rare.size);
  if (probe < 0) {
    printf("layout_test: skipped: /proc/self/pagemap is not readable here\n");
    return 77;
  }
  int failures = 0;
  // The rare code is large enough to be worth its mapping: some pages of it.
  if (rare.size < 16384) {
    fprintf(stderr, "layout_test: spanalloc_rare holds only %zu bytes\n", rare.size);
    failures++;
  }
  long eh_pages = ResidentPages(pagemap, eh.addr + lib.base, eh.size);
  printf("after typical work: spanalloc_rare %zu bytes, %ld pages resident; .eh_frame %zu bytes, %ld pages resident\n",
         rare.size, probe, eh.size, eh_pages);
  if (probe != 0 || eh_pages != 0) {
    fprintf(stderr,
            "layout_test: a small program mapped rare code or unwind tables (%ld, %ld pages): code it runs is "
            "marked SPANALLOC_RARE, or layout.ld no longer gives them mappings of their own\n",
            probe, eh_pages);
    failures++;
  }
  // Rare code: the report. Its output goes to /dev/null.
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  dup2(null, STDERR_FILENO);
  malloc_stats();
  dup2(saved, STDERR_FILENO);
  long after = ResidentPages(pagemap, rare.addr + lib.base, rare.size);
  printf("after malloc_stats: spanalloc_rare %ld pages resident\n", after);
  if (after <= 0) {
    fprintf(stderr, "layout_test: malloc_stats ran rare code, yet no page of it is resident: the check sees nothing\n");
    failures++;
  }
  return failures ? 1 : 0;
}
