// A fuzzer's input read as a program (tests/fuzz/*_fuzz.cc): numbers taken
// from the front, and past its end every read gives 0, so every input is a
// valid program that ends. Each harness derives its own Input, adding the
// draws of its domain (sizes, alignments, span lengths).
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // program_invocation_short_name
#endif
#include <errno.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace fuzz {

class ByteReader {
 public:
  ByteReader(const uint8_t *d, size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() { return uint16_t(u8() | u8() << 8); }
  uint32_t u32() { return uint32_t(u16()) | uint32_t(u16()) << 16; }

 private:
  const uint8_t *d_;
  size_t n_, i_ = 0;
};

// A broken invariant: one line naming the fuzzer (its program name), what
// failed and two figures, then abort() so libFuzzer keeps the input.
[[noreturn]] inline void Fail(const char *what, uint64_t a = 0, uint64_t b = 0) {
  fprintf(stderr, "%s: %s (%#llx, %#llx)\n", program_invocation_short_name, what, (unsigned long long)a,
          (unsigned long long)b);
  abort();
}

}  // namespace fuzz

#define FUZZ_CHECK(cond, a, b)                                \
  do {                                                        \
    if (!(cond)) fuzz::Fail(#cond, uint64_t(a), uint64_t(b)); \
  } while (0)
