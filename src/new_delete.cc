// Every replaceable C++ operator new and delete. Sizes passed to sized
// delete are not trusted (the page map knows the real size), so a
// mismatched sized delete cannot corrupt the heap.
#include <new>

#include "allocator.h"

using namespace spanalloc;

namespace {

// operator new's contract: on failure call the new-handler and retry; with
// no handler, throw std::bad_alloc (or return nullptr for nothrow forms).
SPANALLOC_COLD void *NewSlow(size_t n, size_t align, bool nothrow) {
  for (;;) {
    void *p = align ? AllocAligned(align, n) : Alloc(n);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

SPANALLOC_INLINE void *New(size_t n) {
  void *p = Alloc(n);
  return SPANALLOC_LIKELY(p != nullptr) ? p : NewSlow(n, 0, false);
}
SPANALLOC_INLINE void *NewNothrow(size_t n) noexcept {
  void *p = Alloc(n);
  return SPANALLOC_LIKELY(p != nullptr) ? p : NewSlow(n, 0, true);
}
void *NewAligned(size_t n, std::align_val_t al) {
  void *p = AllocAligned(size_t(al), n);
  return p != nullptr ? p : NewSlow(n, size_t(al), false);
}
void *NewAlignedNothrow(size_t n, std::align_val_t al) noexcept {
  void *p = AllocAligned(size_t(al), n);
  return p != nullptr ? p : NewSlow(n, size_t(al), true);
}

}  // namespace

SPANALLOC_EXPORT void *operator new(size_t n) { return New(n); }
SPANALLOC_EXPORT void *operator new[](size_t n) { return New(n); }
SPANALLOC_EXPORT void *operator new(size_t n, const std::nothrow_t &) noexcept { return NewNothrow(n); }
SPANALLOC_EXPORT void *operator new[](size_t n, const std::nothrow_t &) noexcept { return NewNothrow(n); }
SPANALLOC_EXPORT void *operator new(size_t n, std::align_val_t al) { return NewAligned(n, al); }
SPANALLOC_EXPORT void *operator new[](size_t n, std::align_val_t al) { return NewAligned(n, al); }
SPANALLOC_EXPORT void *operator new(size_t n, std::align_val_t al, const std::nothrow_t &) noexcept {
  return NewAlignedNothrow(n, al);
}
SPANALLOC_EXPORT void *operator new[](size_t n, std::align_val_t al, const std::nothrow_t &) noexcept {
  return NewAlignedNothrow(n, al);
}

SPANALLOC_EXPORT void operator delete(void *p) noexcept { Free(p, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p) noexcept { Free(p, "operator delete[]"); }
SPANALLOC_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept { Free(p, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept { Free(p, "operator delete[]"); }
SPANALLOC_EXPORT void operator delete(void *p, size_t) noexcept { Free(p, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p, size_t) noexcept { Free(p, "operator delete[]"); }
SPANALLOC_EXPORT void operator delete(void *p, std::align_val_t) noexcept { Free(p, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p, std::align_val_t) noexcept { Free(p, "operator delete[]"); }
SPANALLOC_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  Free(p, "operator delete");
}
SPANALLOC_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  Free(p, "operator delete[]");
}
SPANALLOC_EXPORT void operator delete(void *p, size_t, std::align_val_t) noexcept { Free(p, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p, size_t, std::align_val_t) noexcept { Free(p, "operator delete[]"); }
