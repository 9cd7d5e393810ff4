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

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "audit.h"
#include "auth.h"
#include "common/cli.h"
#include "common/diag.h"
#include "common/spawn.h"
#include "common/std_streams.h"
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
    126 COMMAND cannot be run; 127 COMMAND not found (or a component of
        its path is not a directory): the tools' one rule (tools/common)

FILES
    /etc/pam.d/douser      PAM configuration (installed with douser)
)";

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

// `why` is douser's own text, with every value in it already escaped (a
// usage error's quoted option, a log_escape'd name): only cut here, unless
// a control byte slipped in, which escapes the whole of it.
int refuse(const Caller &c, const std::string &target, const std::string &why, int status = 1) {
  bool plain = std::none_of(why.begin(), why.end(), [](char ch) { return (ch >= 0 && ch < 0x20) || ch == 0x7f; });
  audit_refused("refused: " + log_escape(c.name) + " as " + log_escape(target, 64) + " on " +
                (c.tty.empty() ? std::string("no tty") : log_escape(c.tty)) + ": " +
                (plain ? why.substr(0, 300) + (why.size() > 300 ? "..." : "") : log_escape(why, 300)));
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
    toolkit::warn("Authentication failure");
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
      toolkit::warn(a.failures ? std::to_string(a.failures) + " incorrect password attempts"
                               : "Authentication failure");
      return refused(std::to_string(a.failures) + " incorrect password(s)");
    case AuthResult::no_terminal:
      toolkit::warn("a terminal is required to read the password");
      return refused("no terminal");
    case AuthResult::interrupted: {
      if (a.signal == SIGTTIN || a.signal == SIGTTOU) {
        toolkit::warn("cannot ask for the password in the background: run douser in the foreground");
        return refused("prompt in the background");
      }
      std::string what = a.signal ? signal_name(a.signal) : std::string("end of input");
      toolkit::warn("password prompt interrupted (" + what + ")");
      int status = refused("prompt interrupted (" + what + ")");
      if (a.signal && a.signal != SIGTSTP) g_reraise = a.signal;
      return status;
    }
    case AuthResult::expired:
      toolkit::warn("the account or password of " + toolkit::quote(t.name, 64) + " has expired");
      return refused("expired: " + a.detail);
    case AuthResult::error:
      toolkit::warn("authentication error: " + a.detail);
      return refused("PAM error: " + a.detail);
  }
  // A module may have changed the user: run as whom PAM authenticated, found
  // afresh (su does the same).
  std::string pam_user = pam.user();
  Target again;
  if (pam_user.empty() || !lookup_target(pam_user, again)) {
    toolkit::warn("unknown user " + toolkit::quote(pam_user, 64) + " (named by PAM)");
    return refuse(c, pam_user, "unknown user after authentication (asked for " + t.name + ")");
  }
  if (again.name != t.name)
    audit_refused("PAM changed the user from " + log_escape(t.name) + " to " + log_escape(again.name));
  PasswordState now = password_state(again.name);
  if (now == PasswordState::locked || now == PasswordState::empty) {  // no password module should allow these
    toolkit::warn("Authentication failure");
    return refuse(
        c, again.name,
        std::string("authenticated by PAM; ") + (now == PasswordState::locked ? "account locked" : "empty password"));
  }
  if (no_login_shell(again.shell)) {
    toolkit::warn("the account " + toolkit::quote(again.name, 64) + " is not available (its shell is " +
                  toolkit::quote(again.shell, 64) + ")");
    return refuse(c, again.name, "no login shell");
  }
  t = again;
  return -1;
}

// In the child, as the target: the caller's directory, reached by its path
// with the target's permissions, must be the one we were started in.
// Returns "", or why not.
std::string enter_caller_dir(const Caller &c, const Target &t) {
  int e = 0;
  struct stat here;
  if (!c.has_cwd)
    e = ENOENT;
  else if (chdir(c.cwd.c_str()) != 0 || stat(".", &here) != 0)
    e = errno;
  else if (here.st_dev != c.cwd_id.st_dev || here.st_ino != c.cwd_id.st_ino)
    e = ESTALE;
  if (e == 0) return "";
  return "cannot run in " + (c.has_cwd ? toolkit::quote(c.cwd, 64) : std::string("the working directory")) + " as " +
         t.name + ": " + (e == ESTALE ? std::string("it has moved") : toolkit::errno_text(e)) +
         " (douser does not change directory)";
}

int run(const Options &o, const Caller &c, Target t, const std::vector<std::string> &caller_env) {
  PamSession pam(t.name, c.name, c.tty);
  if (c.uid != 0) {
    int status = authenticate(pam, c, t);
    if (status >= 0) return status;
  }
  std::string error;
  if (!pam.open(error)) {
    toolkit::warn(error);
    return refuse(c, t.name, error);
  }

  std::vector<std::string> env = build_environment(caller_env, t, c.name, c.uid);
  std::vector<char *> envp;
  for (auto &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  // Every signal stays blocked from here on and arrives through the relay's
  // signal fd: douser cannot be ended half-way with the terminal in raw mode.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  Relay relay;
  if (!relay.prepare(t.uid, error)) {
    toolkit::warn(error);
    return refuse(c, t.name, error);
  }
  audit_granted(log_escape(c.name) + " ran '" + log_command(o.command) + "' as " + log_escape(t.name) + " (uid " +
                std::to_string(t.uid) + ") on " + (c.tty.empty() ? std::string("no tty") : log_escape(c.tty)) + " in " +
                log_escape(c.cwd) +
                (relay.uses_pty() ? "; new terminal " + relay.pty_name() : std::string("; new session")));

  // The child: its session and terminal, the caller's limits, the target's
  // identity, the caller's directory; then signals reset and exec (COMMAND
  // found in the safe PATH of our own environment).
  toolkit::SpawnOptions so;
  so.envp = envp.data();
  so.reset_signals = true;
  so.setup = [&]() -> std::string {
    std::string e = relay.enter_child();
    if (!e.empty()) return e;
    restore_limits();
    e = become(t);
    if (!e.empty()) return "cannot become " + t.name + ": " + e;
    e = enter_caller_dir(c, t);
    if (!e.empty()) return e;
    // Whatever PAM modules or libraries left open must not reach the command.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    return "";
  };
  std::optional<toolkit::Child> child;
  try {
    child.emplace(toolkit::spawn(o.command, so));
  } catch (const std::system_error &e) {
    toolkit::warn(e.what());
    return refuse(c, t.name, e.what());
  }
  toolkit::ExecResult started = child->wait_exec();
  int wstatus = 0;
  if (started.stage == toolkit::ExecResult::Stage::started) {
    wstatus = relay.run(child->pid());
  } else {
    while (waitpid(child->pid(), &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  child.reset();  // reaped: its pid is never used again
  pam.close();
  sigprocmask(SIG_SETMASK, &old, nullptr);
  switch (started.stage) {
    case toolkit::ExecResult::Stage::started:
      return toolkit::exit_status_of(wstatus);
    case toolkit::ExecResult::Stage::setup_failed:
      toolkit::warn(started.text);
      return refuse(c, t.name, started.text);
    case toolkit::ExecResult::Stage::exec_failed:
      toolkit::warn(toolkit::describe(started, o.command[0]));
      return toolkit::exit_status_of(started);
  }
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  toolkit::set_program_name("douser");
  exit_when_out_of_memory();
  raise_limits();
  if (!sanitize_fds()) return 1;
  if (const char *low = limits_too_low()) {
    toolkit::warn(low);
    return 1;
  }
  if (argc < 1 || argv[0] == nullptr) {
    toolkit::warn("invalid invocation (empty argument list)");
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
  } catch (const toolkit::UsageError &e) {
    int status = toolkit::usage_error(e.what());
    return refuse(c, "?", std::string("usage error: ") + e.what(), status);
  }
  if (o.help) return toolkit::write_stdout(kHelp) ? 0 : 1;
  if (o.version) return toolkit::print_version();
  switch (privilege()) {
    case Privilege::setuid_root:
    case Privilege::real_root:
      break;
    case Privilege::not_setuid:
      toolkit::warn(
          "not installed set-user-ID root, so it cannot switch users (as root: chown root douser && "
          "chmod 4755 douser; and the file system must not be mounted nosuid)");
      return refuse(c, o.user, "not set-user-ID root");
    case Privilege::user_namespace:
      toolkit::warn(
          "refused inside a user namespace: the set-user-ID bit has no effect here, and uid 0 here is not root");
      c.name = "uid " + std::to_string(c.uid) + " in a user namespace";
      return refuse(c, o.user, "user namespace without privilege");
  }
  Target t;
  if (!lookup_target(o.user, t)) {
    toolkit::warn("unknown user " + toolkit::quote(o.user, 64));
    return refuse(c, o.user, "unknown user");
  }
  if (c.uid != 0 && no_login_shell(t.shell)) {
    toolkit::warn("the account " + toolkit::quote(t.name, 64) + " is not available (its shell is " +
                  toolkit::quote(t.shell, 64) + ")");
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
