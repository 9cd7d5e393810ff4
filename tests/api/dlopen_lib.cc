// A small library the lifecycle suite dlopens while other threads allocate.
// It allocates in its constructor, in thread-local storage (dynamic TLS blocks
// are allocated with malloc by the C library), in its functions and in its
// destructor.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::vector<std::string> *g_names;
void *g_block;
thread_local std::vector<int> t_scratch;

__attribute__((constructor)) void lib_init() {
  g_names = new std::vector<std::string>;
  for (int i = 0; i < 200; ++i) g_names->push_back("name-" + std::to_string(i) + std::string(i % 50, 'x'));
  g_block = malloc(100000);
  memset(g_block, 0x3c, 100000);
}

__attribute__((destructor)) void lib_fini() {
  delete g_names;
  free(g_block);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) long api_lib_roundtrip(int n) {
  // Allocation and free inside the library, plus thread-local data.
  long sum = 0;
  t_scratch.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t_scratch[i] = i;
  for (int x : t_scratch) sum += x;
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('a' + i % 26);
  sum += static_cast<long>(s.size());
  const unsigned char *b = static_cast<const unsigned char *>(g_block);
  for (size_t i = 0; i < 100000; i += 4096) sum += b[i] == 0x3c ? 0 : 1000000;
  sum += static_cast<long>(g_names->size());
  return sum;  // n*(n-1)/2 + n + 200
}

// Returns a block that the caller frees with free().
extern "C" __attribute__((visibility("default"))) void *api_lib_make(size_t n) {
  void *p = malloc(n);
  if (p) memset(p, 0x5e, n);
  return p;
}

// Frees a block that the caller allocated with malloc().
extern "C" __attribute__((visibility("default"))) int api_lib_take(void *p, size_t n) {
  const unsigned char *b = static_cast<const unsigned char *>(p);
  int bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= b[i] != 0x6f;
  free(p);
  return bad;
}
