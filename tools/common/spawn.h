// spawn.h: running a command in a child process, and the exit statuses
// that every tool gives for it.
//
// The rule for a command that cannot be run (one rule for every tool, as
// POSIX shells use it):
//   127  the command does not exist: execve failed with ENOENT, or with
//        ENOTDIR (a component of its path is not a directory). Also a name
//        that PATH lookup did not find.
//   126  it exists but could not be run: EACCES, ENOEXEC, ETXTBSY, ELOOP,
//        E2BIG, ENOMEM, ... (every other errno).
// A command that ran: its exit status, or 128+N when signal N killed it.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace toolkit {

inline constexpr int kExitCannotExec = 126;
inline constexpr int kExitNotFound = 127;

// 127 for ENOENT and ENOTDIR, 126 for any other exec errno.
int exec_failure_status(int err);

// "command not found" for ENOENT, strerror(err) for the others ("Not a
// directory", "Permission denied", "Exec format error").
std::string exec_failure_text(int err);

// The exit status a shell gives for a wait status: WEXITSTATUS, 128+signal,
// or 1 (stopped/continued: not an end).
int exit_status_of(int wait_status);

struct SpawnOptions {
  bool search_path = true;      // execvp (PATH lookup) or execv (a path)
  char *const *envp = nullptr;  // the command's environment; null: this process's
  // Every signal back to SIG_DFL and an empty signal mask before exec (an
  // init or a privilege changer); off: the child keeps what it inherited,
  // apart from handlers, which exec resets.
  bool reset_signals = false;
  // Runs in the child after fork, before the signal reset and exec. An
  // empty string goes on; anything else is the reason the child gives up
  // (sent to the parent, exit status 1). Must not return into the parent's
  // logic: it is called in the child only.
  std::function<std::string()> setup;
};

// What became of the child before its command started.
struct ExecResult {
  enum class Stage { started, setup_failed, exec_failed };
  Stage stage = Stage::started;
  int err = 0;       // exec_failed: execve's errno
  std::string text;  // setup_failed: what setup returned
};

// A forked child and the close-on-exec pipe on which it reports a failure
// before its command runs.
class Child {
 public:
  Child(pid_t pid, int report_fd) : pid_(pid), report_fd_(report_fd) {}
  Child(Child &&other) noexcept;
  Child &operator=(Child &&) = delete;
  Child(const Child &) = delete;
  ~Child();

  pid_t pid() const { return pid_; }

  // Blocks until the child has exec'd its command (the pipe closes) or has
  // reported a failure; call it once. Does not reap the child: with a
  // failure it exits at once with exec_failure_status(err) or 1.
  ExecResult wait_exec();

 private:
  pid_t pid_;
  int report_fd_;
};

// Forks (stdio flushed first) and runs ARGV[0] with ARGV in the child.
// Throws std::system_error when the pipe or the fork fails. ARGV must not
// be empty.
Child spawn(const std::vector<std::string> &argv, const SpawnOptions &options = {});

// "CMD: command not found", "CMD: Permission denied", or "CMD: TEXT" for a
// setup failure; empty when the command started. CMD quoted if needed.
std::string describe(const ExecResult &result, const std::string &command);

// The exit status for a result that is not "started".
int exit_status_of(const ExecResult &result);

}  // namespace toolkit
