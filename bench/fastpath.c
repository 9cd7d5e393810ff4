/* Fast-path instruction count (issue 3), run under callgrind by fastpath.sh.
 *
 *   bench_fastpath PATTERN N
 *
 * PATTERN a: malloc(32) then free at once, N times.
 * PATTERN b: 256 live 32 B objects allocated, then freed in LIFO order; N
 *            malloc+free pairs in all (N/256 rounds).
 * A warm-up run of the same pattern (not collected) comes first. fastpath.sh
 * collects only inside fp_loop_a / fp_loop_b (--toggle-collect) and runs N
 * and 2N, so (Ir(2N) - Ir(N)) / N is the cost of one malloc+free pair,
 * calls and loop included, with one-time costs cancelled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE 32
#define LIVE 256

static inline void escape(void* p) { __asm__ volatile("" : : "g"(p) : "memory"); }

__attribute__((noipa)) void fp_loop_a(long n) {
  for (long i = 0; i < n; ++i) {
    void* p = malloc(SIZE);
    escape(p);
    free(p);
  }
}

__attribute__((noipa)) void fp_loop_b(long n) {
  void* live[LIVE];
  for (long r = 0; r < n / LIVE; ++r) {
    for (int j = 0; j < LIVE; ++j) {
      live[j] = malloc(SIZE);
      escape(live[j]);
    }
    for (int j = LIVE; j-- > 0;) free(live[j]);
  }
}

__attribute__((noipa)) void fp_warm(char pattern, long n) {
  if (pattern == 'a')
    for (long i = 0; i < n; ++i) {
      void* p = malloc(SIZE);
      escape(p);
      free(p);
    }
  else {
    void* live[LIVE];
    for (long r = 0; r < n / LIVE; ++r) {
      for (int j = 0; j < LIVE; ++j) {
        live[j] = malloc(SIZE);
        escape(live[j]);
      }
      for (int j = LIVE; j-- > 0;) free(live[j]);
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 3 || (argv[1][0] != 'a' && argv[1][0] != 'b')) {
    fprintf(stderr, "usage: %s a|b N\n", argv[0]);
    return 2;
  }
  char pattern = argv[1][0];
  long n = atol(argv[2]);
  fp_warm(pattern, 4 * LIVE);
  if (pattern == 'a')
    fp_loop_a(n);
  else
    fp_loop_b(n);
  printf("{\"bench\":\"fastpath\",\"pattern\":\"%c\",\"pairs\":%ld}\n", pattern, n);
  return 0;
}
