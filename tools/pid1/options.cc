// options.cc: see options.h.
#include "options.h"

#include <getopt.h>

#include "common/cli.h"
#include "common/diag.h"
#include "common/std_streams.h"

namespace pid1 {

namespace {

constexpr const char *kHelp = R"(NAME
    pid1 - a minimal init for containers: forward signals, reap zombies

SYNOPSIS
    pid1 [-g] [--grace SECONDS] [-v] [--] COMMAND [ARG...]

DESCRIPTION
    Runs COMMAND as its only direct child and stays alive until it exits,
    then exits with its status. Meant to be PID 1 of a container (or of a
    PID namespace): the kernel delivers to PID 1 only the signals it has
    handlers for, so a plain program there cannot be stopped with SIGTERM,
    and orphaned processes are re-parented to PID 1 and stay zombies unless
    it reaps them. pid1 does both jobs.

    Every catchable signal pid1 receives (SIGTERM, SIGINT, SIGHUP, SIGQUIT,
    SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, the
    real-time signals, ...) is forwarded to COMMAND, or with -g to its
    process group. SIGCHLD is not forwarded: it makes pid1 reap. Job-control
    signals never stop pid1 itself. Every zombie re-parented to pid1 is
    reaped. When pid1 is not PID 1 it makes itself a child subreaper
    (PR_SET_CHILD_SUBREAPER), so orphans of COMMAND still come to it.

    COMMAND runs in its own process group, which becomes the foreground
    group of the terminal on stdin if pid1's group was, with an empty signal
    mask and default dispositions for every signal, whatever pid1 inherited.
    Stdin, stdout and stderr are passed through untouched.

    SIGTERM is only forwarded, like every other signal, unless --grace is
    given: then COMMAND has that long after the first SIGTERM to exit, and
    a second SIGTERM within it, or its end, sends SIGKILL to COMMAND's
    process group. (An orchestrator that sends SIGTERM has its own grace
    period and SIGKILL; pid1 cutting it short could lose data.)

    Job control: COMMAND takes the terminal's foreground only if pid1 had
    it (a background pid1 leaves the terminal to its shell). When COMMAND
    is stopped (Ctrl-Z, SIGTTIN, ...) pid1 stops too, as one shell job,
    and hands the terminal back to its own process group; when the shell
    continues it (fg, bg), pid1 continues COMMAND, with the terminal if
    pid1 got it back. (Not as a session leader, e.g. PID 1 of a container:
    there is no shell above it to take the terminal. As PID 1 of a PID
    namespace started from a shell, e.g. with unshare, the kernel does not
    let pid1 stop itself: it continues COMMAND at once, so Ctrl-Z has no
    lasting effect; Ctrl-C still works.)

OPTIONS
    -g, --group
        Forward signals to COMMAND's process group (kill(-pgid, sig)), so
        that a shell and the programs it started all receive them.
    --grace SECONDS
        Turns on escalation: SIGKILL SECONDS after the first SIGTERM, or at
        a second SIGTERM before that. SECONDS is a decimal number (digits,
        optionally a point and up to 9 decimals), at most 1000000000; 0
        leaves escalation off, the default (SIGTERM is only forwarded).
    -v, --verbose
        Report forwarded signals, reaped orphans and escalation on stderr.
    -h, --help
        Print this help and exit.
    --version
        Print the version and exit.
    --
        Ends the options; needed when COMMAND starts with '-'.

EXIT STATUS
    N       COMMAND exited with status N.
    128+N   COMMAND was killed by signal N (137 after the SIGKILL of
            --grace).
    126     COMMAND was found but could not be executed.
    127     COMMAND was not found.
    2       Bad option or no COMMAND.
    1       pid1 itself failed (fork, signal setup).

EXAMPLES
    ENTRYPOINT ["/usr/bin/pid1", "--", "/app/server", "--port", "8080"]
        In a Dockerfile: docker stop reaches the server, zombies are reaped.
    pid1 -g -- sh -c 'worker & exec server'
        SIGTERM reaches the shell's whole process group.
    unshare --pid --fork --mount-proc pid1 --grace 5 -- ./app
        Runs ./app under pid1 as PID 1 of a new PID namespace.
)";

enum LongOnly { kGrace = 256, kVersion };

const struct option kLongOptions[] = {
    {"group", no_argument, nullptr, 'g'},        {"grace", required_argument, nullptr, kGrace},
    {"verbose", no_argument, nullptr, 'v'},      {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, kVersion}, {nullptr, 0, nullptr, 0},
};

// SECONDS: decimal digits, optionally '.' and up to 9 more (no sign,
// blank, exponent, hex or "inf": strtod would take all of those).
bool parse_grace(const char *arg, long long &out_ns) {
  constexpr long long kMaxSeconds = 1000000000;
  long long secs = 0, frac = 0;
  const char *p = arg;
  int int_digits = 0, frac_digits = 0;
  for (; *p >= '0' && *p <= '9'; ++p, ++int_digits) {
    secs = secs * 10 + (*p - '0');
    if (secs > kMaxSeconds) return false;
  }
  if (*p == '.') {
    for (++p; *p >= '0' && *p <= '9'; ++p, ++frac_digits) {
      if (frac_digits == 9) return false;
      frac = frac * 10 + (*p - '0');
    }
  }
  if (*p != '\0' || int_digits + frac_digits == 0) return false;
  for (int i = frac_digits; i < 9; ++i) frac *= 10;
  if (secs == kMaxSeconds && frac > 0) return false;
  out_ns = secs * 1000000000LL + frac;
  return true;
}

// One option of pid1's (throws toolkit::UsageError for a bad value).
void apply_option(int c, const char *arg, Options &opt) {
  switch (c) {
    case 'g':
      opt.group = true;
      break;
    case 'v':
      opt.verbose = true;
      break;
    case 'h':
      opt.help = true;
      break;
    case kVersion:
      opt.version = true;
      break;
    case kGrace:
      if (!parse_grace(arg, opt.grace_ns))
        throw toolkit::UsageError("invalid --grace value " + toolkit::quote(arg, 40) +
                                  " (seconds: digits, optionally a point and up to 9 decimals; at most "
                                  "1000000000)");
      break;
  }
}

}  // namespace

bool parse_options(int argc, char **argv, Options &opt) {
  try {
    // '+': stop at the first operand, so COMMAND's own options stay its own.
    int first = toolkit::parse_options(argc, argv, "+gvh", kLongOptions, [&](int c, const char *arg) {
      apply_option(c, arg, opt);
      return true;
    });
    if (opt.help || opt.version) return true;
    if (first >= argc) throw toolkit::UsageError("missing COMMAND");
    opt.command = argv + first;
    return true;
  } catch (const toolkit::UsageError &e) {
    toolkit::usage_error(e.what());
    return false;
  }
}

void print_help() { toolkit::write_stdout(kHelp); }

}  // namespace pid1
