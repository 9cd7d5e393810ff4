/* A program with one heap bug, chosen by argv[1], for the guarded-sampling
 * tests (guarded_test.cc). Run with SPANALLOC_GUARD_SAMPLE=1, so every
 * allocation is guarded while slots last. Each bug sits in its own function
 * so that the reports' stacks name it. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The empty asm after each call keeps it from being a tail call, so these
 * functions keep their frames on the stacks the reports print. */
__attribute__((noinline)) char *allocate_record(size_t n) {
  char *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}
__attribute__((noinline)) void release_record(char *p) {
  free(p);
  __asm__ volatile("" : : : "memory");
}
__attribute__((noinline)) void write_at(char *volatile p, long i, char v) { p[i] = v; }
__attribute__((noinline)) char read_at(const char *volatile p, long i) { return p[i]; }

/* True when the page at address a lies in a mapping without access rights. */
static int inaccessible(uintptr_t a) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && a >= lo && a < hi) found = strncmp(perms, "---", 3) == 0;
  }
  if (f) fclose(f);
  return found;
}

static void program_handler(int sig) {
  (void)sig;
  static const char msg[] = "program handler saw the fault\n";
  if (write(2, msg, sizeof msg - 1) < 0) _exit(4);
  _exit(3);
}

int main(int argc, char **argv) {
  const char *bug = argc > 1 ? argv[1] : "none";
  if (!strcmp(bug, "chain")) {
    /* A handler installed before the allocator starts: spanalloc's must
     * pass faults that are not its own on to it. */
    signal(SIGSEGV, program_handler);
    free(allocate_record(16)); /* the allocator starts here, at the latest */
    struct sigaction now;
    sigaction(SIGSEGV, NULL, &now);
    if (now.sa_handler == program_handler) {
      fprintf(stderr, "spanalloc's handler was not installed over the program's\n");
      return 5;
    }
    write_at((char *)16, 0, 1); /* not a guarded object */
    return 6;
  }
  char *p = allocate_record(32);
  if (!strcmp(bug, "overflow")) write_at(p, 32, 1);
  if (!strcmp(bug, "overflow-read")) return read_at(p, 40);
  if (!strcmp(bug, "underflow")) write_at(allocate_record(4096), -1, 1);
  if (!strcmp(bug, "use-after-free")) {
    release_record(p);
    write_at(p, 8, 1);
  }
  if (!strcmp(bug, "use-after-free-read")) {
    release_record(p);
    return read_at(p, 0);
  }
  if (!strcmp(bug, "double-free")) {
    release_record(p);
    release_record(p);
  }
  if (!strcmp(bug, "realloc-after-free")) {
    release_record(p);
    p = realloc(p, 64);
  }
  if (!strcmp(bug, "aligned-overflow")) {
    char *a = aligned_alloc(256, 256);
    if ((uintptr_t)a % 256 != 0) return 7;
    write_at(a, 256, 1);
  }
  if (!strcmp(bug, "segv-not-ours")) write_at((char *)16, 0, 1);
  if (!strcmp(bug, "none")) {
    /* No bug: the object ends at an inaccessible page, its neighbours work,
     * and a mixed workload runs clean with every allocation sampled. */
    if (!inaccessible((uintptr_t)p + 32)) return 8;
    memset(p, 0x5a, 32);
    for (int i = 0; i < 20000; i++) {
      size_t n = (size_t)(i * 7919) % 40000 + 1;
      char *q = i % 3 ? malloc(n) : calloc(1, n);
      if (q == NULL) return 9;
      if (i % 3 == 0 && (q[0] != 0 || q[n - 1] != 0)) return 10;
      memset(q, i & 0xff, n);
      q = realloc(q, n + 100);
      if (q == NULL || q[n - 1] != (char)(i & 0xff)) return 11;
      free(q);
    }
    for (int i = 0; i < 32; i++)
      if (p[i] != 0x5a) return 12;
    release_record(p);
    puts("clean");
    return 0;
  }
  fprintf(stderr, "the bug \"%s\" went unnoticed\n", bug);
  return 2;
}
