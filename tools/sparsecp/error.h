// error.h: the one exception type of sparsecp, carrying a finished message.
#pragma once
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sparsecp {

// A failure while copying one file. what() is the message without the
// program name, e.g. "error writing 'b': No space left on device".
class CopyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 'NAME' quoted the way the messages quote user-supplied names.
inline std::string quote(const std::string& name) { return "'" + name + "'"; }

// Throws CopyError("WHAT 'NAME': strerror(err)").
[[noreturn]] inline void fail(const char* what, const std::string& name, int err) {
  throw CopyError(std::string(what) + " " + quote(name) + ": " + std::strerror(err));
}

}  // namespace sparsecp
