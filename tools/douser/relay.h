// relay: the command's terminal, and what douser passes between the caller
// and the command while it runs.
//
// The command always runs in a new session. When one of fds 0-2 is a
// terminal, the command gets a new pseudo-terminal as its controlling
// terminal, in place of each of those fds; douser relays the caller's typing
// to it (the caller's terminal in raw mode, when douser is in the
// foreground), its output back, window-size changes (SIGWINCH), and every
// signal douser receives. So nothing the command leaves behind ever holds
// the caller's terminal: once the command ends douser closes the
// pseudo-terminal, and a process still using it reads end-of-file.
// Without a terminal, the command keeps fds 0-2 as they are and douser
// relays signals only.
//
// Order of use: all signals blocked; prepare() (as root, before fork);
// enter_child() in the child; run() in the parent. The destructor restores
// the caller's terminal modes on every path.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <string>

namespace douser {

class Relay {
 public:
  Relay() = default;
  ~Relay();
  Relay(const Relay &) = delete;
  Relay &operator=(const Relay &) = delete;

  // Opens the signal fd and, when one of fds 0-2 is a terminal, a new
  // pseudo-terminal whose slave is owned by `owner` (group tty, mode 0620),
  // with the caller's terminal modes and window size. Needs every signal
  // blocked. Returns false with `error` set when it cannot.
  bool prepare(uid_t owner, std::string &error);
  bool uses_pty() const { return master_ >= 0; }
  const std::string &pty_name() const { return pty_name_; }

  // In the child, before dropping privileges: new session; with a
  // pseudo-terminal, it becomes the controlling terminal and replaces each
  // of fds 0-2 that was a terminal. Returns an error text, or "".
  std::string enter_child();

  // In the parent: relays until `child` has ended, and returns its wait
  // status. A stopped command stops douser too (when douser has the
  // caller's terminal in raw mode) and continues with it.
  int run(pid_t child);

 private:
  void copy_window_size();
  bool enter_raw();
  void leave_raw();
  // Handles one signal: passes it on, or resizes, or reaps the child
  // (`status` set when it ended; `stopped` only while we hold raw mode).
  enum class Event { none, ended, stopped };
  Event on_signal(int sig, pid_t child, int &status);
  // Writes what the command has written so far (at most 1 MiB more).
  void flush_output();

  int sigfd_ = -1;
  int master_ = -1;
  int slave_ = -1;
  std::string pty_name_;
  bool was_tty_[3] = {false, false, false};
  int caller_tty_ = -1;  // first of fds 0-2 that is a terminal
  int out_fd_ = -1;      // where the command's terminal output goes (a terminal of the caller's)
  bool output_ok_ = false;
  std::string to_caller_;
  termios saved_{};  // the caller's modes, while raw_
  bool raw_ = false;
};

}  // namespace douser
