/* A C program (no C++ runtime at start-up) that dlopens a C++ module and has
 * its operator new fail: std::bad_alloc must reach the module's handler.
 *   api_dlopen_new MODULE   prints "bad_alloc caught" and exits 0 on success. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  int cxx_at_start = 0;
  while (maps && fgets(line, sizeof line, maps))
    if (strstr(line, "libstdc++")) cxx_at_start = 1;
  if (maps) fclose(maps);
  if (cxx_at_start) {
    fprintf(stderr, "the C++ runtime is already loaded: the test would prove nothing\n");
    return 3;
  }
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 4;
  }
  int (*f)(size_t) = (int (*)(size_t))dlsym(h, "api_new_fails_with_bad_alloc");
  if (f == NULL) return 5;
  int r = f(SIZE_MAX / 2);
  if (r != 0) {
    fprintf(stderr, "module returned %d\n", r);
    return 6;
  }
  printf("bad_alloc caught\n");
  return 0;
}
