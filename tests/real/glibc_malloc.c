/* Preloaded before a program that links its own allocator (Debian's
 * redis-server links libjemalloc): sends the malloc family to the C
 * library's, so that the program can be measured on glibc's malloc too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);

void *malloc(size_t n) { return __libc_malloc(n); }
void *calloc(size_t c, size_t n) { return __libc_calloc(c, n); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
void *valloc(size_t n) { return __libc_memalign(4096, n); }
int posix_memalign(void **out, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(a, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
/* glibc has no __libc_ name for this one: look it up in libc itself (a
 * plain dlsym(RTLD_NEXT) would find the program's own allocator first). */
size_t malloc_usable_size(void *p) {
  static size_t (*libc_usable)(void *);
  if (libc_usable == NULL) {
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc != NULL) libc_usable = (size_t(*)(void *))dlsym(libc, "malloc_usable_size");
    if (libc_usable == NULL) return 0;
  }
  return libc_usable(p);
}
