// output: where a report goes (standard output or -o FILE), written only
// once there is something to write, so a failed query never touches FILE.
#pragma once
#include <stdexcept>
#include <string>
#include <utility>

namespace taskdelays {

// Standard output could not be written; the error was already reported.
struct ReportNotWritten : std::runtime_error {
  ReportNotWritten() : std::runtime_error("") {}
};

// Replaces the content of PATH with TEXT. A new or ordinary file (regular,
// one link, not a symbolic link) is written to a temporary file in the
// same directory and renamed over PATH: PATH is left either as it was or
// complete. Its mode (and, for root, owner) is kept. Anything else (a
// FIFO, a device, a symbolic link, a file with other hard links) is
// written in place. Catchable signals are held back while the temporary
// file exists, so none can leave it behind. Throws std::runtime_error.
void replace_file(const std::string &path, const std::string &text);

// A stream of records (listen mode): FILE is opened, and truncated, when
// the first record arrives.
class StreamOutput {
 public:
  explicit StreamOutput(std::string path) : path_(std::move(path)) {}
  ~StreamOutput();
  StreamOutput(const StreamOutput &) = delete;
  StreamOutput &operator=(const StreamOutput &) = delete;

  // Appends TEXT; throws std::runtime_error ("write error: ...").
  void write(const std::string &text);

 private:
  std::string path_;  // empty: standard output
  int fd_ = -1;
};

// Writes TEXT to standard output or replaces PATH with it.
void deliver(const std::string &path, const std::string &text);

}  // namespace taskdelays
