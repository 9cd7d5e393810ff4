// Fatal-error reporting. Writes with write(2) only: must work with the heap
// in any state, so it never allocates and never calls stdio.
#include "common.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace spanalloc {

namespace {
// Appends s to buf at *pos, never past cap.
SPANALLOC_RARE void Append(char *buf, size_t cap, size_t *pos, const char *s) {
  while (*s && *pos + 1 < cap) buf[(*pos)++] = *s++;
}
SPANALLOC_RARE void AppendHex(char *buf, size_t cap, size_t *pos, uintptr_t v) {
  char digits[2 + 16 + 1];
  int n = 0;
  digits[n++] = '0';
  digits[n++] = 'x';
  int shift = 60;
  while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) digits[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
  digits[n] = '\0';
  Append(buf, cap, pos, digits);
}
SPANALLOC_RARE void AppendDecimal(char *buf, size_t cap, size_t *pos, uint64_t v) {
  char digits[21];
  int n = sizeof digits - 1;
  digits[n] = '\0';
  do {
    digits[--n] = char('0' + v % 10);
    v /= 10;
  } while (v != 0);
  Append(buf, cap, pos, digits + n);
}
}  // namespace

SPANALLOC_RARE void WriteStderr(const char *msg) {
  size_t len = strlen(msg);
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, msg, len);
    if (n <= 0) return;
    msg += n;
    len -= size_t(n);
  }
}

SPANALLOC_RARE void FatalMisuse(const char *func, const void *ptr, const char *fault, const char *detail,
                                size_t block_size, size_t given) noexcept {
  char line[320];
  size_t pos = 0;
  Append(line, sizeof line, &pos, "spanalloc: ");
  Append(line, sizeof line, &pos, fault);
  Append(line, sizeof line, &pos, " of ");
  AppendHex(line, sizeof line, &pos, reinterpret_cast<uintptr_t>(ptr));
  Append(line, sizeof line, &pos, " (");
  Append(line, sizeof line, &pos, func);
  if (block_size != 0 || detail != nullptr) Append(line, sizeof line, &pos, ": ");
  if (block_size != 0) {
    AppendDecimal(line, sizeof line, &pos, block_size);
    Append(line, sizeof line, &pos, detail != nullptr ? "-byte block, " : "-byte block");
  }
  if (detail != nullptr) Append(line, sizeof line, &pos, detail);
  if (given != kNoValue) {
    Append(line, sizeof line, &pos, " ");
    AppendDecimal(line, sizeof line, &pos, given);
  }
  Append(line, sizeof line, &pos, ")\n");
  line[pos] = '\0';
  WriteStderr(line);
  abort();
}

SPANALLOC_RARE void FatalInternal(const char *what) noexcept {
  WriteStderr("spanalloc: internal error: ");
  WriteStderr(what);
  WriteStderr("\n");
  abort();
}

void *FailNoMemory() noexcept {
  errno = ENOMEM;
  return nullptr;
}

}  // namespace spanalloc
