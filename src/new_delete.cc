// Every replaceable C++ operator new and delete. Sizes passed to sized
// delete are not trusted (the page map knows the real size), so a
// mismatched sized delete cannot corrupt the heap; one up to 1 KiB is
// reported (DeleteSized), and with SPANALLOC_CHECKS=full every one.
#include <dlfcn.h>

#include <new>

#include "allocator.h"
#include "options.h"

// libspanalloc does not depend on libstdc++, so preloading it into a C
// program does not map the C++ runtime (about 1 MiB of RSS). The few
// runtime entry points operator new's failure path needs are weak
// references, bound when the program starts with the C++ runtime; a C
// program that dlopens C++ code later finds them null, and the failure path
// then looks them up by name (CxxRuntime), so its operator new still calls
// the new-handler and throws std::bad_alloc.
namespace std {
new_handler get_new_handler() noexcept __attribute__((weak));
[[noreturn]] void __throw_bad_alloc() __attribute__((weak));
}  // namespace std
extern "C" {
void *__cxa_begin_catch(void *) noexcept __attribute__((weak));
void __cxa_end_catch() __attribute__((weak));
}
// The personality routine is referenced from the unwind tables the compiler
// writes, where no attribute reaches: mark the symbol weak for the assembler.
asm(".weak __gxx_personality_v0");

using namespace spanalloc;

namespace {

// The C++ runtime's entry points, from the weak references or, when the
// runtime was loaded after spanalloc (dlopen, maybe RTLD_LOCAL), by name
// from the global scope or from libstdc++ itself. nullptr: no runtime.
struct CxxRuntime {
  std::new_handler (*get_new_handler)() noexcept;
  void (*throw_bad_alloc)();
};
SPANALLOC_RARE void *CxxSymbol(const char *name) {
  if (void *f = dlsym(RTLD_DEFAULT, name)) return f;
  void *lib = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
  return lib ? dlsym(lib, name) : nullptr;  // (the handle stays: the library is loaded anyway)
}
SPANALLOC_RARE CxxRuntime FindCxxRuntime() {
  CxxRuntime rt{std::get_new_handler, std::__throw_bad_alloc};
  if (rt.get_new_handler == nullptr)
    rt.get_new_handler = reinterpret_cast<std::new_handler (*)() noexcept>(CxxSymbol("_ZSt15get_new_handlerv"));
  if (rt.throw_bad_alloc == nullptr) rt.throw_bad_alloc = reinterpret_cast<void (*)()>(CxxSymbol("_ZSt17__throw_bad_allocv"));
  return rt;
}

// operator new's contract: on failure call the new-handler and retry; with
// no handler, throw std::bad_alloc (or return nullptr for nothrow forms).
SPANALLOC_COLD void *NewSlow(size_t n, size_t align, bool nothrow) {
  for (;;) {
    void *p = align ? AllocAligned(align, n) : Alloc(n);
    if (p != nullptr) return p;
    CxxRuntime rt = FindCxxRuntime();
    std::new_handler handler = rt.get_new_handler ? rt.get_new_handler() : nullptr;
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      if (rt.throw_bad_alloc == nullptr)
        FatalInternal("operator new: out of memory, and no C++ runtime loaded to throw std::bad_alloc");
      rt.throw_bad_alloc();
      __builtin_unreachable();
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

// Sized delete: up to 1 KiB the size's class must be the block's
// (FreeSized1K, inline); a class that differs is checked in full
// (CheckSize reports a real mismatch), as is every size with
// SPANALLOC_CHECKS=full. Larger sizes and the aligned forms are otherwise
// freed as by free(), which never trusts the size, so a wrong size cannot
// corrupt the heap either way.
SPANALLOC_NOINLINE SPANALLOC_SAMPLE_PATH void DeleteSizedSlow(void *p, size_t n, size_t align, const char *func) {
  if (p != nullptr && (g_options.full_checks || (align == 0 && n <= 1024))) CheckSize(p, n, align, func);
  Free(p, func);
}
SPANALLOC_INLINE void DeleteSized(void *p, size_t n, const char *func) {
  FreeSized1K(p, n, func, [=] { DeleteSizedSlow(p, n, 0, func); });
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
SPANALLOC_EXPORT void operator delete(void *p, size_t n) noexcept { DeleteSized(p, n, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p, size_t n) noexcept { DeleteSized(p, n, "operator delete[]"); }
SPANALLOC_EXPORT void operator delete(void *p, std::align_val_t) noexcept { Free(p, "operator delete"); }
SPANALLOC_EXPORT void operator delete[](void *p, std::align_val_t) noexcept { Free(p, "operator delete[]"); }
SPANALLOC_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  Free(p, "operator delete");
}
SPANALLOC_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  Free(p, "operator delete[]");
}
SPANALLOC_EXPORT void operator delete(void *p, size_t n, std::align_val_t al) noexcept {
  DeleteSizedSlow(p, n, size_t(al), "operator delete");
}
SPANALLOC_EXPORT void operator delete[](void *p, size_t n, std::align_val_t al) noexcept {
  DeleteSizedSlow(p, n, size_t(al), "operator delete[]");
}
