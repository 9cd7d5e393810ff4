/* A program for the report tests (check_report.py): allocates small objects
 * of many classes from several threads and large blocks from the main
 * thread, frees part of them, keeps the rest live, then does what argv[1]
 * says:
 *   exit    returns from main (the exit report, if asked for, follows)
 *   closed  closes stderr in an atexit handler of its own, as coreutils does
 *   reused  puts another file (argv[2]) on the descriptor where spanalloc
 *           keeps stderr, and closes stderr, before exit
 *   json    writes spanalloc_print_report_json(1) and exits
 *   info    writes malloc_info(0, stdout), then "einval=N" with the result
 *           of malloc_info(1, stdout) on stderr
 * Built linked with libspanalloc.a and plain (run under LD_PRELOAD). */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spanalloc.h"

enum { kThreads = 4, kPerThread = 3000, kLarge = 24 };
static void *g_live[kThreads][kPerThread];
static void *g_large[kLarge];

static void *worker(void *arg) {
  void **mine = arg;
  unsigned seed = (unsigned)(mine - &g_live[0][0]) + 1;
  for (int i = 0; i < kPerThread; i++) {
    seed = seed * 1103515245u + 12345u;
    size_t n = 1 + (seed >> 8) % (i % 10 == 0 ? 32768 : 512);
    mine[i] = malloc(n);
    memset(mine[i], 0xab, n);
  }
  for (int i = 0; i < kPerThread; i += 2) {
    free(mine[i]);
    mine[i] = NULL;
  }
  return NULL;
}

static void close_stderr(void) { close(STDERR_FILENO); }

/* The descriptor, other than 0-2, open on the same file as stderr. */
static int kept_stderr(void) {
  struct stat err, st;
  if (fstat(STDERR_FILENO, &err) != 0) return -1;
  DIR *d = opendir("/proc/self/fd");
  int found = -1;
  for (struct dirent *e; d && (e = readdir(d));) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != dirfd(d) && fstat(fd, &st) == 0 && st.st_dev == err.st_dev && st.st_ino == err.st_ino)
      found = fd;
  }
  if (d) closedir(d);
  return found;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "exit";
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) pthread_create(&t[i], NULL, worker, g_live[i]);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < kLarge; i++) g_large[i] = malloc((size_t)(64 + 97 * i) << 10);
  for (int i = 0; i < kLarge; i += 3) free(g_large[i]);
  for (int i = 0; i < 100; i++) free(malloc(100)); /* this thread's cache */

  if (strcmp(mode, "closed") == 0) {
    atexit(close_stderr);
  } else if (strcmp(mode, "reused") == 0) {
    int kept = kept_stderr();
    if (kept < 0 || argc < 3) {
      fprintf(stderr, "no kept stderr descriptor found\n");
      return 2;
    }
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, kept) != kept) return 2;
    close(fd);
    close(STDERR_FILENO);
  } else if (strcmp(mode, "json") == 0) {
#ifdef REPORT_WORKLOAD_LINKED
    spanalloc_print_report_json(STDOUT_FILENO);
#else
    void (*print_json)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "spanalloc_print_report_json");
    if (print_json == NULL) return 3;
    print_json(STDOUT_FILENO);
#endif
  } else if (strcmp(mode, "info") == 0) {
    int rc = malloc_info(0, stdout);
    fflush(stdout);
    int einval = malloc_info(1, stdout);
    fprintf(stderr, "rc=%d einval=%d\n", rc, einval);
  } else if (strcmp(mode, "exit") != 0) {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
