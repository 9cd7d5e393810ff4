// diag.h: how every tool talks about trouble: "NAME: message" on standard
// error, one usage-error type, and names quoted so that no byte a user
// chose can forge a line or drive the terminal.
//
// The program name is set once by the tool (set_program_name("sparsecp")),
// never taken from argv[0], which the caller controls (absent, 100 KB, or
// someone else's name).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace toolkit {

// Exit status of a usage error (bad option, operand or value), for every tool.
inline constexpr int kExitUsage = 2;

// A bad command line: what() is the message without the program name.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// NAME must outlive the program (a string literal).
void set_program_name(const char *name);
const char *program_name();

// Writes "NAME: MSG\n" to file descriptor 2 with write(2) (no stdio buffer,
// one call for lines up to the pipe atomicity limit), retrying on EINTR.
// Safe after fork in the child. Errors are ignored: there is nowhere left to
// report them.
void warn(std::string_view msg);

// warn(MSG), then exit(STATUS) (stdio flushed).
[[noreturn]] void die(int status, std::string_view msg);

// "NAME: MSG" and "Try 'NAME --help' for more information."; returns
// kExitUsage. An empty MSG prints only the hint.
int usage_error(std::string_view msg);

// 'S' with every byte that is not part of a printable character (ASCII, or
// well-formed UTF-8 from U+00A0 up) written as \n, \t, \r, \\, \' or \xHH,
// and cut after max_bytes of S (then "..." follows the quote). For names and
// values a user gave, in messages and logs.
std::string quote(std::string_view s, size_t max_bytes = 4096);

// strerror(err) without the thread-safety caveat.
std::string errno_text(int err);

}  // namespace toolkit
