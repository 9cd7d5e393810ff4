/* A program whose live heap is held by three functions: parse_records 60 %,
 * build_index 30 %, load_images 10 % (of the bytes, in objects of several
 * sizes, small and large), plus churn that frees all it allocates. The
 * heap-profile test (check_profile.py) profiles it and reads the profile
 * with google-pprof and go tool pprof.
 *   profile_sites [MiB]          exit: the profile is written at exit
 *   profile_sites MiB api PATH   also spanalloc_dump_profile(PATH)
 *   profile_sites MiB signal     raise(SIGUSR2), then allocate a little:
 *                                PATH.1 must appear */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spanalloc_dump_profile(const char *path) __attribute__((weak));

static void *keep[1 << 21];
static size_t nkeep;

/* Allocates about `bytes` in objects of the given sizes, in turn; a macro,
 * so that malloc is called from the site function itself. */
#define HOLD(bytes, sizes)                                     \
  do {                                                         \
    size_t done = 0;                                           \
    for (int i = 0; done < (bytes); i++) {                     \
      size_t n = sizes[i % (sizeof sizes / sizeof sizes[0])];  \
      char *p = malloc(n);                                     \
      if (p == NULL) exit(3);                                  \
      memset(p, 1, n < 64 ? n : 64);                           \
      keep[nkeep++] = p;                                       \
      done += n;                                               \
    }                                                          \
  } while (0)

__attribute__((noinline)) void parse_records(size_t bytes) {
  static const size_t sizes[] = {48, 96, 160, 640};
  HOLD(bytes, sizes);
}
__attribute__((noinline)) void build_index(size_t bytes) {
  static const size_t sizes[] = {1024, 4096, 12288};
  HOLD(bytes, sizes);
}
__attribute__((noinline)) void load_images(size_t bytes) {
  static const size_t sizes[] = {65536, 262144};
  HOLD(bytes, sizes);
}
__attribute__((noinline)) void churn(void) {
  for (int i = 0; i < 200000; i++) free(malloc((size_t)(i % 200) * 8 + 8));
}

int main(int argc, char **argv) {
  size_t mib = (size_t)(argc > 1 ? atoi(argv[1]) : 64) << 20;
  parse_records(mib / 10 * 6);
  churn();
  build_index(mib / 10 * 3);
  load_images(mib / 10);
  churn();
  if (argc > 3 && strcmp(argv[2], "api") == 0) {
    if (spanalloc_dump_profile == NULL) return 4;
    int err = spanalloc_dump_profile(argv[3]);
    if (err != 0) {
      fprintf(stderr, "spanalloc_dump_profile: error %d\n", err);
      return 5;
    }
  }
  if (argc > 2 && strcmp(argv[2], "signal") == 0) {
    raise(SIGUSR2);
    churn(); /* the next sampling slow path writes PATH.1 */
  }
  printf("%zu objects held\n", nkeep);
  return 0;
}
