// douser: run a command as another user after authenticating as that user
// (su model: the target's password, root by default). Set-user-ID root.
// See README.md and --help.
//
// Order of work, each step before anything that depends on it:
//   1. the caller's resource limits raised (restored for the command), fds
//      0-2 made valid, every inherited fd above 2 closed;
//   2. the caller's environment captured and cleared (PAM and the command
//      never see it; the command gets a fresh allow-listed one);
//   3. options; the privilege exec really gave us (set-user-ID, or root of
//      the initial user namespace; uid 0 in a user namespace is refused);
//      target lookup; an account without a login shell is refused;
//   4. PAM: up to 3 password prompts on /dev/tty, each failure logged and
//      then 2 s of delay; any signal that would end douser ends the prompt
//      at once; account check; PAM_USER read back and looked up again;
//      credentials and session;
//   5. fork: the child starts a new session (on a new pseudo-terminal when
//      the caller has a terminal, see relay.h), drops to the target (groups,
//      gid, uid, each read back), enters the caller's working directory as
//      the target (or fails), and execs; the parent relays terminal I/O and
//      signals, closes the PAM session and passes the exit status back.
// Every outcome goes to syslog (LOG_AUTH), each value escaped and cut.
#include <fcntl.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "audit.h"
#include "auth.h"
#include "environment.h"
#include "identity.h"
#include "options.h"
#include "process.h"
#include "relay.h"

extern char **environ;

using namespace douser;

namespace {

constexpr const char *kHelp = R"(NAME
    douser - run a command as another user, after that user's password

SYNOPSIS
    douser [-u USER] [--] COMMAND [ARG...]

DESCRIPTION
    douser asks for the password of USER (root when -u is not given) on the
    terminal, checks it through PAM (service "douser", /etc/pam.d/douser),
    and runs COMMAND as USER: with USER's supplementary groups, group and
    user ids (each change is verified), in a clean environment, with every
    inherited file descriptor above 2 closed. A caller that is already root
    is not asked for a password.

    COMMAND is looked up in the safe PATH below, never in the caller's.

    douser must be installed set-user-ID root (owner root, mode 4755).

ENVIRONMENT OF THE COMMAND
    Only TERM, COLORTERM, LANG, LANGUAGE, the LC_ categories (LC_ALL,
    LC_CTYPE, ...) and TZ pass from the caller, and only with harmless
    values. The caller's resource limits are the command's too. Set by douser:
        HOME, SHELL     from USER's passwd entry
        USER, LOGNAME   USER
        PATH            /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        DOUSER_USER, DOUSER_UID
                        the caller's name and uid
    Everything else (LD_PRELOAD, IFS, PATH, BASH_ENV, ...) is dropped.

TERMINAL
    The command always runs in a session of its own. When one of the
    standard input, output or error is a terminal, the command gets a new
    pseudo-terminal in its place: douser passes the caller's typing to it
    (the caller's terminal in raw mode while douser runs in the
    foreground), its output back, window-size changes, and every signal
    douser receives. When the command ends douser closes that terminal, so
    nothing the command left behind can read or inject what the caller
    types afterwards. Without a terminal the command keeps the standard
    file descriptors as they are.

WORKING DIRECTORY
    The command runs in the caller's working directory, entered again by
    its path with USER's permissions. When USER cannot enter it, douser
    fails (it never silently changes to another directory).

REFUSALS
    unknown user (USER is a name: numbers are not taken as uids); an
    account whose shell is nologin or false, unless the caller is root;
    wrong password (three tries; each logged, then a 2 s delay); a locked
    or empty password gives the same "Authentication failure" as a wrong
    one, after the prompt, unless the caller is root; an expired account;
    no terminal to ask the password on; the password prompt interrupted
    (Ctrl-C, Ctrl-\, Ctrl-Z, end of input, or any signal: douser stops at
    once, terminal restored); a working directory USER cannot enter;
    douser not installed set-user-ID root, or run inside a user namespace
    where that bit has no effect; fewer than 16 open files or less than
    64 MiB of memory allowed (ulimit -n, -v, -d) when douser cannot raise
    them. Every attempt, granted or refused, is logged to syslog with
    facility auth; logged values are escaped and cut.

OPTIONS
    -u USER, --user USER   the user to become (default root)
    -h, --help             show this help
    --version              show the version

EXIT STATUS
    The command's exit status, or 128+N if it was killed by signal N.
    A password prompt ended by signal N ends douser by that same signal
    (exit 1 for Ctrl-Z and the other stop signals).
    1   refused (authentication, unknown user, working directory, ...)
    2   usage error (no command, unknown option)
    126 COMMAND is not executable; 127 COMMAND not found

FILES
    /etc/pam.d/douser      PAM configuration (installed with douser)
)";

void err(const std::string &s) {
  std::string line = "douser: " + s + "\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

// A caller-supplied value inside a message: escaped and cut.
std::string quoted(const std::string &s) { return "'" + log_escape(s, 64) + "'"; }

std::string tty_of_caller() {
  for (int fd = 0; fd <= 2; ++fd)
    if (isatty(fd)) {
      const char *n = ttyname(fd);
      return n ? n : "?";
    }
  return "";
}

struct Caller {
  uid_t uid = 0;
  std::string name;
  std::string tty;
  std::string cwd;     // as getcwd() gave it; empty when it has none
  struct stat cwd_id;  // st_dev/st_ino of the directory we were started in
  bool has_cwd = false;
};

int refuse(const Caller &c, const std::string &target, const std::string &why, int status = 1) {
  audit_refused("refused: " + log_escape(c.name) + " as " + log_escape(target, 64) + " on " +
                (c.tty.empty() ? std::string("no tty") : log_escape(c.tty)) + ": " + log_escape(why, 300));
  return status;
}

// su refuses these accounts too (their shell is the refusal).
bool no_login_shell(const std::string &shell) {
  std::string base = shell.substr(shell.rfind('/') + 1);
  return base == "nologin" || base == "false";
}

bool lookup_target(const std::string &name, Target &t) {
  passwd *pw = plausible_user_name(name) ? getpwnam(name.c_str()) : nullptr;
  if (!pw || pw->pw_uid == static_cast<uid_t>(-1) || pw->pw_gid == static_cast<gid_t>(-1)) return false;
  t.name = pw->pw_name;
  t.uid = pw->pw_uid;
  t.gid = pw->pw_gid;
  t.home = pw->pw_dir ? pw->pw_dir : "/";
  t.shell = pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh";
  return true;
}

std::string signal_name(int sig) {
  const char *abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Set when the password prompt was ended by a signal that should end
// douser: main raises it again once everything is cleaned up.
int g_reraise = 0;

// Asks for the target's password (for callers other than root). Returns -1
// when authenticated, else the exit status; `t` may change (PAM_USER).
int authenticate(PamSession &pam, const Caller &c, Target &t) {
  AuthOutcome a = pam.authenticate(3, [&](int n) {
    err("Authentication failure");
    audit_refused("authentication failure: " + log_escape(c.name) + " as " + log_escape(t.name) + " on " +
                  log_escape(c.tty) + " (try " + std::to_string(n) + " of 3)");
  });
  // Shadow facts go to the log only, never to the caller: a locked or empty
  // password fails like a wrong one, after the prompt (as su).
  PasswordState ps = password_state(t.name);
  std::string shadow = ps == PasswordState::locked  ? "; account locked"
                       : ps == PasswordState::empty ? "; empty password"
                                                    : "";
  auto refused = [&](const std::string &why) { return refuse(c, t.name, why + shadow); };
  switch (a.result) {
    case AuthResult::ok:
      break;
    case AuthResult::failed:
      err(a.failures ? std::to_string(a.failures) + " incorrect password attempts" : "Authentication failure");
      return refused(std::to_string(a.failures) + " incorrect password(s)");
    case AuthResult::no_terminal:
      err("a terminal is required to read the password");
      return refused("no terminal");
    case AuthResult::interrupted: {
      if (a.signal == SIGTTIN || a.signal == SIGTTOU) {
        err("cannot ask for the password in the background: run douser in the foreground");
        return refused("prompt in the background");
      }
      std::string what = a.signal ? signal_name(a.signal) : std::string("end of input");
      err("password prompt interrupted (" + what + ")");
      int status = refused("prompt interrupted (" + what + ")");
      if (a.signal && a.signal != SIGTSTP) g_reraise = a.signal;
      return status;
    }
    case AuthResult::expired:
      err("the account or password of " + quoted(t.name) + " has expired");
      return refused("expired: " + a.detail);
    case AuthResult::error:
      err("authentication error: " + a.detail);
      return refused("PAM error: " + a.detail);
  }
  if (ps == PasswordState::locked || ps == PasswordState::empty) {  // no PAM module should allow these
    err("Authentication failure");
    return refused("authenticated by PAM");
  }
  // A module may have changed the user: run as whom PAM authenticated, found
  // afresh (su does the same).
  std::string pam_user = pam.user();
  Target again;
  if (pam_user.empty() || !lookup_target(pam_user, again)) {
    err("unknown user " + quoted(pam_user) + " (named by PAM)");
    return refuse(c, pam_user, "unknown user after authentication (asked for " + t.name + ")");
  }
  if (again.name != t.name)
    audit_refused("PAM changed the user from " + log_escape(t.name) + " to " + log_escape(again.name));
  if (no_login_shell(again.shell)) {
    err("the account " + quoted(again.name) + " is not available (its shell is " + quoted(again.shell) + ")");
    return refuse(c, again.name, "no login shell");
  }
  t = again;
  return -1;
}

// Message from the child on the close-on-exec pipe.
struct ChildReport {
  char kind = 0;  // 'S' session/terminal, 'I' identity change, 'D' directory, 'E' exec
  int err = 0;
  char text[240] = {};
};

[[noreturn]] void child_fails(int fd, char kind, int e, const std::string &text) {
  ChildReport r;
  r.kind = kind;
  r.err = e;
  std::snprintf(r.text, sizeof r.text, "%s", text.c_str());
  (void)!write(fd, &r, sizeof r);
  _exit(kind == 'E' ? (e == ENOENT ? 127 : 126) : 1);
}

// In the child, as the target: the caller's directory, reached by its path
// with the target's permissions, must be the one we were started in.
int enter_caller_dir(const Caller &c) {
  if (!c.has_cwd) return ENOENT;
  if (chdir(c.cwd.c_str()) != 0) return errno;
  struct stat here;
  if (stat(".", &here) != 0) return errno;
  if (here.st_dev != c.cwd_id.st_dev || here.st_ino != c.cwd_id.st_ino) return ESTALE;
  return 0;
}

int run(const Options &o, const Caller &c, Target t, const std::vector<std::string> &caller_env) {
  PamSession pam(t.name, c.name, c.tty);
  if (c.uid != 0) {
    int status = authenticate(pam, c, t);
    if (status >= 0) return status;
  }
  std::string error;
  if (!pam.open(error)) {
    err(error);
    return refuse(c, t.name, error);
  }

  std::vector<std::string> env = build_environment(caller_env, t, c.name, c.uid);
  std::vector<char *> envp, argv;
  for (auto &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto &a : o.command) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);

  // Every signal stays blocked from here on and arrives through the relay's
  // signal fd: douser cannot be ended half-way with the terminal in raw mode.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  Relay relay;
  int pipefd[2] = {-1, -1};
  if (!relay.prepare(t.uid, error) || pipe2(pipefd, O_CLOEXEC) != 0) {
    if (error.empty()) error = std::string("pipe: ") + strerror(errno);
    err(error);
    return refuse(c, t.name, error);
  }
  audit_granted(log_escape(c.name) + " ran '" + log_command(o.command) + "' as " + log_escape(t.name) + " (uid " +
                std::to_string(t.uid) + ") on " + (c.tty.empty() ? std::string("no tty") : log_escape(c.tty)) + " in " +
                log_escape(c.cwd) +
                (relay.uses_pty() ? "; new terminal " + relay.pty_name() : std::string("; new session")));
  pid_t child = fork();
  if (child < 0) {
    err(std::string("fork: ") + strerror(errno));
    return 1;
  }
  if (child == 0) {
    close(pipefd[0]);
    for (int s = 1; s < NSIG; ++s)
      if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::string e = relay.enter_child();
    if (!e.empty()) child_fails(pipefd[1], 'S', 0, e);
    restore_limits();
    e = become(t);
    if (!e.empty()) child_fails(pipefd[1], 'I', 0, e);
    if (int d = enter_caller_dir(c)) child_fails(pipefd[1], 'D', d, "");
    // Whatever PAM modules or libraries left open must not reach the command.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    environ = envp.data();
    execvp(argv[0], argv.data());
    child_fails(pipefd[1], 'E', errno, "");
  }
  close(pipefd[1]);
  int wstatus = relay.run(child);
  child = 0;  // reaped: never signal that pid again
  ChildReport r;
  ssize_t n = read(pipefd[0], &r, sizeof r);
  close(pipefd[0]);
  pam.close();
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (n == static_cast<ssize_t>(sizeof r)) {
    switch (r.kind) {
      case 'S':
      case 'I':
        err("cannot become " + t.name + ": " + r.text);
        audit_refused("identity change failed for " + log_escape(t.name) + ": " + log_escape(r.text));
        return 1;
      case 'D': {
        std::string why = r.err == ESTALE ? "it has moved" : strerror(r.err);
        err("cannot run in " + (c.has_cwd ? quoted(c.cwd) : std::string("the working directory")) + " as " + t.name +
            ": " + why + " (douser does not change directory; cd to one that " + t.name + " can enter)");
        return refuse(c, t.name, "cannot enter " + c.cwd + ": " + why);
      }
      default:
        err(log_escape(o.command[0], 256) + ": " + (r.err == ENOENT ? "command not found" : strerror(r.err)));
        return r.err == ENOENT ? 127 : 126;
    }
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  exit_when_out_of_memory();
  raise_limits();
  sanitize_fds();
  if (const char *low = limits_too_low()) {
    (void)!write(STDERR_FILENO, "douser: ", 8);
    (void)!write(STDERR_FILENO, low, strlen(low));
    (void)!write(STDERR_FILENO, "\n", 1);
    return 1;
  }
  if (argc < 1 || argv[0] == nullptr) {
    err("invalid invocation (empty argument list)");
    return 1;
  }
  prctl(PR_SET_DUMPABLE, 0);
  std::vector<std::string> caller_env;
  for (char **e = environ; e && *e; ++e) caller_env.emplace_back(*e);
  clearenv();
  setenv("PATH", kSecurePath, 1);
  audit_open();

  Caller c;
  c.uid = getuid();
  if (passwd *pw = getpwuid(c.uid))
    c.name = pw->pw_name;
  else
    c.name = "#" + std::to_string(c.uid);
  c.tty = tty_of_caller();
  char dir[PATH_MAX];
  if (getcwd(dir, sizeof dir) && dir[0] == '/' && stat(".", &c.cwd_id) == 0) {
    c.cwd = dir;
    c.has_cwd = true;
  }

  Options o;
  try {
    o = parse_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError &e) {
    err(e.what());
    std::cerr << "usage: douser [-u USER] [--] COMMAND [ARG...]   (douser --help)\n";
    return refuse(c, "?", std::string("usage error: ") + e.what(), 2);
  }
  if (o.help) {
    std::cout << kHelp;
    return 0;
  }
  if (o.version) {
    std::cout << "douser 0.1.0\n";
    return 0;
  }
  switch (privilege()) {
    case Privilege::setuid_root:
    case Privilege::real_root:
      break;
    case Privilege::not_setuid:
      err("not installed set-user-ID root, so it cannot switch users (as root: chown root douser && "
          "chmod 4755 douser; and the file system must not be mounted nosuid)");
      return refuse(c, o.user, "not set-user-ID root");
    case Privilege::user_namespace:
      err("refused inside a user namespace: the set-user-ID bit has no effect here, and uid 0 here is not root");
      c.name = "uid " + std::to_string(c.uid) + " in a user namespace";
      return refuse(c, o.user, "user namespace without privilege");
  }
  Target t;
  if (!lookup_target(o.user, t)) {
    err("unknown user " + quoted(o.user));
    return refuse(c, o.user, "unknown user");
  }
  if (c.uid != 0 && no_login_shell(t.shell)) {
    err("the account " + quoted(t.name) + " is not available (its shell is " + quoted(t.shell) + ")");
    return refuse(c, t.name, "no login shell");
  }
  int status = run(o, c, t, caller_env);
  if (g_reraise) {
    signal(g_reraise, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, g_reraise);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
    raise(g_reraise);
    return 128 + g_reraise;
  }
  return status;
}
