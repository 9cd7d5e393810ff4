// error.h: the one exception type of sparsecp, carrying a finished message.
#pragma once
#include <stdexcept>
#include <string>

#include "common/diag.h"

namespace sparsecp {

// A failure while copying one file. what() is the message without the
// program name, e.g. "error writing 'b': No space left on device".
class CopyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 'NAME', control characters escaped (toolkit::quote).
inline std::string quote(const std::string &name) { return toolkit::quote(name); }

// Throws CopyError("WHAT 'NAME': strerror(err)").
[[noreturn]] inline void fail(const char *what, const std::string &name, int err) {
  throw CopyError(std::string(what) + " " + quote(name) + ": " + toolkit::errno_text(err));
}

}  // namespace sparsecp
