// A C++ module that a C program loads with dlopen after start-up: its
// operator new must throw std::bad_alloc on failure (not abort), even though
// the C++ runtime was not loaded when the allocator started.
#include <cstddef>
#include <cstdint>
#include <new>

extern "C" __attribute__((visibility("default"))) int api_new_fails_with_bad_alloc(size_t n) {
  volatile size_t size = n;
  try {
    char *p = new char[size];
    delete[] p;
    return 1;  // did not fail
  } catch (const std::bad_alloc &) {
  }
  try {
    void *p = ::operator new(size, std::align_val_t{64});
    ::operator delete(p, std::align_val_t{64});
    return 2;
  } catch (const std::bad_alloc &) {
  }
  if (::operator new(size, std::nothrow) != nullptr) return 3;
  // And it still allocates.
  int *q = new int[1000];
  q[999] = 7;
  int ok = q[999] == 7;
  delete[] q;
  return ok ? 0 : 4;
}
