// diag.cc: see diag.h.
#include "common/diag.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace toolkit {

namespace {
const char *g_name = "spanalloc-tool";
}  // namespace

void set_program_name(const char *name) { g_name = name; }

const char *program_name() { return g_name; }

namespace {

// Writes all of LINE to fd 2, retrying on EINTR; gives up on errors.
void write_stderr(const std::string &line) {
  const char *p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void warn(std::string_view msg) {
  std::string line;
  line.reserve(std::strlen(g_name) + msg.size() + 3);
  line.append(g_name).append(": ").append(msg).push_back('\n');
  write_stderr(line);
}

void die(int status, std::string_view msg) {
  std::fflush(stdout);
  warn(msg);
  std::exit(status);
}

int usage_error(std::string_view msg) {
  std::fflush(stdout);
  if (!msg.empty()) warn(msg);
  write_stderr(std::string("Try '") + g_name + " --help' for more information.\n");
  return kExitUsage;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] that encodes a printable
// character (U+00A0 and up; no C1 control, no surrogate, no overlong form),
// or 0.
size_t printable_utf8(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  uint32_t cp = c & (0xff >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0xa0, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0;
  return len;
}

}  // namespace

std::string quote(std::string_view s, size_t max_bytes) {
  bool cut = s.size() > max_bytes;
  if (cut) s = s.substr(0, max_bytes);
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('\'');
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (size_t len = c >= 0x80 ? printable_utf8(s, i) : 0) {
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    ++i;
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        }
    }
  }
  out.push_back('\'');
  if (cut) out += "...";
  return out;
}

std::string errno_text(int err) {
  char buf[128];
  // GNU strerror_r: returns the message, which may or may not be in buf.
  return ::strerror_r(err, buf, sizeof buf);
}

}  // namespace toolkit
