// Workloads the release suite (release.cc) runs in child processes, with the
// environment (options) or the cgroup each needs. Built twice like the
// suites: linked with libspanalloc.a, or plain and run under LD_PRELOAD.
//
//   release_helper idle-keeps MiB   frees MiB of blocks, idles 2.5 s; exit 0 if
//                                   RSS stayed up and no thread was started
//   release_helper big-churn MiB N  N rounds: one block of MiB + 1 MiB + i*8 KiB,
//                                   every page written, then freed (sizes grow,
//                                   so a freed block never fits the next)
//   release_helper alloc MiB        allocates MiB in 1 MiB blocks; exit 0 if all
//                                   succeeded; prints the allocator report
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vector>

namespace {
constexpr size_t kMiB = size_t{1} << 20;

size_t Rss() {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f == nullptr || fscanf(f, "%ld %ld", &size, &resident) != 2) abort();
  fclose(f);
  return size_t(resident) * size_t(sysconf(_SC_PAGESIZE));
}

int Threads() {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int n = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
  if (f) fclose(f);
  return n;
}

int IdleKeeps(size_t mib) {
  std::vector<void *> v;
  for (size_t i = 0; i < mib; i++) {
    void *p = malloc(kMiB - 4096 * (i % 8));
    if (p == nullptr) return 2;
    memset(p, 1, kMiB - 4096 * (i % 8));
    v.push_back(p);
  }
  for (void *p : v) free(p);
  size_t after_free = Rss();
  usleep(2500 * 1000);
  size_t later = Rss();
  int threads = Threads();
  printf("after frees %zu MiB, after 2.5 s idle %zu MiB, %d threads\n", after_free / kMiB, later / kMiB, threads);
  return later + mib * kMiB / 4 >= after_free && threads == 1 ? 0 : 1;
}

int BigChurn(size_t mib, int rounds) {
  for (int i = 0; i < rounds; i++) {
    size_t n = (mib + 1) * kMiB + size_t(i) * 8192;
    char *p = static_cast<char *>(malloc(n));
    if (p == nullptr) {
      printf("round %d: malloc(%zu) failed\n", i, n);
      return 2;
    }
    memset(p, i, n);
    free(p);
    if (getenv("RELEASE_HELPER_VERBOSE")) printf("round %d: RSS %zu MiB\n", i, Rss() / kMiB);
  }
  printf("%d rounds done, RSS %zu MiB\n", rounds, Rss() / kMiB);
  return 0;
}

int Alloc(size_t mib) {
  std::vector<void *> v;
  for (size_t i = 0; i < mib; i++) {
    void *p = malloc(kMiB);
    if (p == nullptr) return 1;
    memset(p, 2, kMiB);
    v.push_back(p);
  }
  malloc_stats();
  for (void *p : v) free(p);
  return 0;
}
}  // namespace

int main(int argc, char **argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  if (argc >= 3 && strcmp(argv[1], "idle-keeps") == 0) return IdleKeeps(strtoul(argv[2], nullptr, 10));
  if (argc >= 4 && strcmp(argv[1], "big-churn") == 0)
    return BigChurn(strtoul(argv[2], nullptr, 10), atoi(argv[3]));
  if (argc >= 3 && strcmp(argv[1], "alloc") == 0) return Alloc(strtoul(argv[2], nullptr, 10));
  fprintf(stderr, "usage: release_helper idle-keeps MiB | big-churn MiB ROUNDS | alloc MiB\n");
  return 64;
}
