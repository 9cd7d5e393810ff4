/* A program built against an installed spanalloc (install_test.sh): its
 * malloc must be spanalloc's, and the library the one of its header. */
#include <spanalloc.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  if (spanalloc_version() != SPANALLOC_VERSION) {
    fprintf(stderr, "consumer: header %d, library %d\n", SPANALLOC_VERSION, spanalloc_version());
    return 1;
  }
  spanalloc_stats before, after;
  spanalloc_get_stats(&before);
  size_t n = (size_t)5 << 20;
  char *p = malloc(n);
  spanalloc_get_stats(&after);
  if (p == NULL || after.in_use_large < before.in_use_large + n || spanalloc_usable_size(p) < n) {
    fprintf(stderr, "consumer: malloc is not spanalloc's\n");
    return 1;
  }
  p[n - 1] = 1;
  free(p);
  printf("consumer: spanalloc %d.%d.%d ok\n", SPANALLOC_VERSION_MAJOR, SPANALLOC_VERSION_MINOR,
         SPANALLOC_VERSION_PATCH);
  return 0;
}
