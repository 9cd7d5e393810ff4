// Unit tests of tools/common: messages, option parsing, numbers, version,
// standard descriptors, spawn and exit statuses, sizes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/cli.h"
#include "common/diag.h"
#include "common/spawn.h"
#include "common/std_streams.h"
#include "common/units.h"

namespace tk = toolkit;

namespace {

// Runs FN in a forked child with stdout and stderr in files; returns the
// child's exit status (0 if FN returns) and the text of both.
struct Captured {
  int status;
  std::string out, err;
};

std::string slurp(const std::string &path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

Captured in_child(const std::function<int()> &fn) {
  char out_path[] = "/tmp/toolkit-test-out.XXXXXX";
  char err_path[] = "/tmp/toolkit-test-err.XXXXXX";
  int o = mkstemp(out_path), e = mkstemp(err_path);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(o, 1);
    dup2(e, 2);
    int rc = fn();
    std::fflush(nullptr);
    _exit(rc);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  close(o);
  close(e);
  Captured c{tk::exit_status_of(ws), slurp(out_path), slurp(err_path)};
  unlink(out_path);
  unlink(err_path);
  return c;
}

}  // namespace

TEST(Diag, WarnAndUsageErrorNameTheTool) {
  tk::set_program_name("mytool");
  Captured c = in_child([] {
    tk::warn("something failed");
    return tk::usage_error("bad thing");
  });
  EXPECT_EQ(c.status, 2);
  EXPECT_EQ(c.err, "mytool: something failed\nmytool: bad thing\nTry 'mytool --help' for more information.\n");
  c = in_child([]() -> int { tk::die(5, "gone"); });
  EXPECT_EQ(c.status, 5);
  EXPECT_EQ(c.err, "mytool: gone\n");
}

TEST(Diag, QuoteEscapesWhatCouldForgeALine) {
  EXPECT_EQ(tk::quote("a b.txt"), "'a b.txt'");
  EXPECT_EQ(tk::quote("a\nmytool: forged"), "'a\\nmytool: forged'");
  EXPECT_EQ(tk::quote(std::string("\x1b[2J\t\r\\'\x7f", 9)), "'\\x1b[2J\\t\\r\\\\\\'\\x7f'");
  EXPECT_EQ(tk::quote(std::string("n\0l", 3)), "'n\\x00l'");
  EXPECT_EQ(tk::quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80'");
  EXPECT_EQ(tk::quote("\xc2\x9b"), "'\\xc2\\x9b'");           // C1 control (CSI)
  EXPECT_EQ(tk::quote("\xc0\xaf"), "'\\xc0\\xaf'");           // overlong '/'
  EXPECT_EQ(tk::quote("\xed\xa0\x80"), "'\\xed\\xa0\\x80'");  // surrogate
  EXPECT_EQ(tk::quote("\xe2\x82"), "'\\xe2\\x82'");           // cut sequence
  EXPECT_EQ(tk::quote(std::string(100000, 'x'), 10), "'xxxxxxxxxx'...");
  EXPECT_EQ(tk::errno_text(ENOENT), "No such file or directory");
}

namespace {

const struct option kLong[] = {
    {"sparse", required_argument, nullptr, 256},
    {"spare", no_argument, nullptr, 257},
    {"verbose", no_argument, nullptr, 'v'},
    {"color", optional_argument, nullptr, 258},
    {nullptr, 0, nullptr, 0},
};

// Parses ARGS (argv[0] added) with "vp:" and kLong; returns the options
// seen as "c=arg " items and the operands, or the usage error.
std::string parse(std::vector<std::string> args, const char *shortopts = "vp:") {
  args.insert(args.begin(), "prog");
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string seen;
  try {
    int first =
        tk::parse_options(static_cast<int>(args.size()), argv.data(), shortopts, kLong, [&](int c, const char *arg) {
          seen.append(std::to_string(c)).append("=").append(arg ? arg : "-").append(" ");
          return c != 'p' || std::string(arg) != "stop";
        });
    seen += "|";
    for (int i = first; i < static_cast<int>(args.size()); ++i) seen.append(" ").append(argv[i]);
    return seen;
  } catch (const tk::UsageError &e) {
    return std::string("error: ") + e.what();
  }
}

}  // namespace

TEST(Cli, ParsesLikeGetoptLong) {
  EXPECT_EQ(parse({"-v", "a", "--sparse=auto", "b"}), "118=- 256=auto | a b");  // permuted
  EXPECT_EQ(parse({"--sparse", "never", "-pX", "--", "-v"}), "256=never 112=X | -v");
  EXPECT_EQ(parse({"--spars=x"}), "256=x |");                      // unique prefix
  EXPECT_EQ(parse({"-p", "stop", "-v", "x"}), "112=stop | -v x");  // handler stops
  EXPECT_EQ(parse({"-v", "a", "-v"}, "+vp:"), "118=- | a -v");     // '+': stop at operand
  EXPECT_EQ(parse({"--color", "--color=always"}), "258=- 258=always |");
  EXPECT_EQ(parse({}), "|");
}

TEST(Cli, ErrorsNameTheOptionNotArgv0) {
  EXPECT_EQ(parse({"-q"}), "error: invalid option -- 'q'");
  EXPECT_EQ(parse({"-vq"}), "error: invalid option -- 'q'");
  EXPECT_EQ(parse({"--sparse=x", "-qv"}), "error: invalid option -- 'q'");
  EXPECT_EQ(parse({"a", "-q"}), "error: invalid option -- 'q'");
  EXPECT_EQ(parse({"-p"}), "error: option requires an argument -- 'p'");
  EXPECT_EQ(parse({"-vp"}), "error: option requires an argument -- 'p'");
  EXPECT_EQ(parse({"--nope"}), "error: unrecognized option '--nope'");
  EXPECT_EQ(parse({"--nope=1"}), "error: unrecognized option '--nope=1'");
  EXPECT_EQ(parse({"x", "--nope"}), "error: unrecognized option '--nope'");
  EXPECT_EQ(parse({"--sparse"}), "error: option '--sparse' requires an argument");
  EXPECT_EQ(parse({"--verbose=1"}), "error: option '--verbose' doesn't allow an argument");
  EXPECT_EQ(parse({"--spar"}), "error: option '--spar' is ambiguous; possibilities: '--sparse' '--spare'");
  EXPECT_EQ(parse({"--a\nb"}), "error: unrecognized option '--a\\nb'");
  std::string huge = parse({"--" + std::string(100000, 'x')});
  EXPECT_LT(huge.size(), 300u);
  EXPECT_EQ(huge.substr(0, 33), "error: unrecognized option '--xxx");
  char *none[] = {nullptr};
  EXPECT_EQ(tk::parse_options(0, none, "v", kLong, [](int, const char *) { return true; }), 0);
}

TEST(Cli, DecimalOnlyAndInRange) {
  EXPECT_EQ(tk::parse_decimal("0", 0, 10, "n"), 0u);
  EXPECT_EQ(tk::parse_decimal("007", 0, 10, "n"), 7u);
  EXPECT_EQ(tk::parse_decimal("18446744073709551615", 0, UINT64_MAX, "n"), UINT64_MAX);
  for (const char *bad : {"", " 1", "1 ", "+1", "-1", "0x10", "1e3", "1.0", "1K", "11", "abc", "18446744073709551616",
                          "99999999999999999999999999"}) {
    EXPECT_THROW(tk::parse_decimal(bad, 0, 10, "n"), tk::UsageError) << bad;
  }
  EXPECT_THROW(tk::parse_decimal("0", 1, 10, "n"), tk::UsageError);
  try {
    tk::parse_decimal("0x1f", 1, 4194304, "pid");
    FAIL();
  } catch (const tk::UsageError &e) {
    EXPECT_STREQ(e.what(), "invalid pid '0x1f': expected a whole number from 1 to 4194304");
  }
  try {
    tk::parse_decimal(std::string(100000, '9'), 1, 9, "count");
    FAIL();
  } catch (const tk::UsageError &e) {
    EXPECT_LT(std::string(e.what()).size(), 200u);
  }
}

TEST(Cli, VersionIsTheProjectVersion) {
  EXPECT_STREQ(tk::version(), EXPECTED_VERSION);
  tk::set_program_name("mytool");
  Captured c = in_child([] { return tk::print_version(); });
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.out, std::string("mytool (spanalloc tools) ") + EXPECTED_VERSION + "\n");
}

TEST(StdStreams, ClosedDescriptorsAreFilledAndStillFail) {
  Captured c = in_child([] {
    close(0);
    close(1);
    if (!tk::ensure_std_fds()) return 10;
    if (fcntl(0, F_GETFD) < 0 || fcntl(1, F_GETFD) < 0) return 11;
    char ch;
    if (read(0, &ch, 1) != -1 || errno != EBADF) return 12;
    if (write(1, "x", 1) != -1 || errno != EBADF) return 13;
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 3) return 14;
    return tk::write_stdout("report\n") ? 15 : 0;
  });
  EXPECT_EQ(c.status, 0);
  EXPECT_NE(c.err.find("write error: Bad file descriptor"), std::string::npos) << c.err;
  c = in_child([] {
    int full = open("/dev/full", O_WRONLY);
    dup2(full, 1);
    bool a = tk::write_stdout("x\n");
    std::fputs("more\n", stdout);
    bool b = tk::flush_stdout();
    return a || b ? 1 : 0;
  });
  EXPECT_EQ(c.status, 0);
  EXPECT_NE(c.err.find("write error: No space left on device"), std::string::npos) << c.err;
}

TEST(Spawn, ExitStatusRule) {
  EXPECT_EQ(tk::exec_failure_status(ENOENT), 127);
  EXPECT_EQ(tk::exec_failure_status(ENOTDIR), 127);
  for (int e : {EACCES, ENOEXEC, ETXTBSY, ELOOP, E2BIG, ENOMEM, EISDIR}) EXPECT_EQ(tk::exec_failure_status(e), 126);
  EXPECT_EQ(tk::exec_failure_text(ENOENT), "command not found");
  EXPECT_EQ(tk::exec_failure_text(EACCES), "Permission denied");
}

namespace {
int run_to_end(tk::Child &c, tk::ExecResult &r) {
  r = c.wait_exec();
  int ws = 0;
  while (waitpid(c.pid(), &ws, 0) < 0 && errno == EINTR) {
  }
  return tk::exit_status_of(ws);
}
}  // namespace

TEST(Spawn, RunsAndReportsFailures) {
  tk::ExecResult r;
  tk::Child ok = tk::spawn({"sh", "-c", "exit 3"});
  EXPECT_EQ(run_to_end(ok, r), 3);
  EXPECT_EQ(r.stage, tk::ExecResult::Stage::started);
  EXPECT_EQ(tk::describe(r, "sh"), "");

  tk::Child killed = tk::spawn({"sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(run_to_end(killed, r), 128 + SIGTERM);

  struct Case {
    std::vector<std::string> argv;
    bool path;
    int err, status;
    const char *text;
  };
  char script[] = "/tmp/toolkit-test-script.XXXXXX";
  int fd = mkstemp(script);
  ASSERT_EQ(write(fd,
                  "\x7f"
                  "ELF garbage",
                  12),
            12);
  close(fd);
  chmod(script, 0755);
  for (const Case &c : std::vector<Case>{
           {{"no-such-command-xyz"}, true, ENOENT, 127, "no-such-command-xyz: command not found"},
           {{"/no/such/file"}, false, ENOENT, 127, "/no/such/file: command not found"},
           {{"/etc/passwd/x"}, false, ENOTDIR, 127, "/etc/passwd/x: Not a directory"},
           {{"/etc"}, true, EACCES, 126, "/etc: Permission denied"},
           {{script}, false, ENOEXEC, 126, nullptr},
       }) {
    tk::SpawnOptions o;
    o.search_path = c.path;
    tk::Child ch = tk::spawn(c.argv, o);
    EXPECT_EQ(run_to_end(ch, r), c.status) << c.argv[0];
    EXPECT_EQ(r.stage, tk::ExecResult::Stage::exec_failed);
    EXPECT_EQ(r.err, c.err) << c.argv[0];
    EXPECT_EQ(tk::exit_status_of(r), c.status);
    if (c.text) {
      EXPECT_EQ(tk::describe(r, c.argv[0]), c.text);
    }
  }
  unlink(script);
  EXPECT_EQ(tk::describe(r, "a\nb").substr(0, 7), "'a\\nb':");
}

TEST(Spawn, SetupEnvironmentAndSignals) {
  tk::ExecResult r;
  tk::SpawnOptions o;
  o.setup = [] { return std::string("cannot enter the cgroup"); };
  tk::Child bad = tk::spawn({"true"}, o);
  EXPECT_EQ(run_to_end(bad, r), 1);
  EXPECT_EQ(r.stage, tk::ExecResult::Stage::setup_failed);
  EXPECT_EQ(tk::describe(r, "true"), "true: cannot enter the cgroup");

  // The environment given, and every signal back to default.
  char path[] = "/tmp/toolkit-test-env.XXXXXX";
  close(mkstemp(path));
  std::string cmd = std::string("echo \"$X\" >") + path + "; grep -E '^Sig(Ign|Blk)' /proc/self/status >>" + path;
  std::string x = "X=from spawn";
  char *envp[] = {x.data(), nullptr};
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGUSR1, &ign, &old);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  sigprocmask(SIG_BLOCK, &block, &old_mask);
  o = {};
  o.envp = envp;
  o.reset_signals = true;
  tk::Child ch = tk::spawn({"/bin/sh", "-c", cmd}, o);
  EXPECT_EQ(run_to_end(ch, r), 0);
  EXPECT_EQ(slurp(path), "from spawn\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  // Without the reset, the ignored SIGUSR1 and blocked SIGUSR2 are inherited.
  o.reset_signals = false;
  tk::Child keep = tk::spawn({"/bin/sh", "-c", cmd}, o);
  EXPECT_EQ(run_to_end(keep, r), 0);
  EXPECT_NE(slurp(path), "from spawn\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  sigaction(SIGUSR1, &old, nullptr);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  unlink(path);
}

TEST(Units, HumanBytes) {
  EXPECT_EQ(tk::human_bytes(0), "0 B");
  EXPECT_EQ(tk::human_bytes(1023), "1023 B");
  EXPECT_EQ(tk::human_bytes(1024), "1.0 KiB");
  EXPECT_EQ(tk::human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(tk::human_bytes((1 << 20) - 1), "1.0 MiB");
  EXPECT_EQ(tk::human_bytes(3ull << 30), "3.0 GiB");
  EXPECT_EQ(tk::human_bytes(UINT64_MAX), "16.0 EiB");
}
