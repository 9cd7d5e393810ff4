// cli.cc: see cli.h.
#include "cli.h"

#include <unistd.h>

#include <climits>

#include "common/cli.h"

namespace taskdelays {

uint32_t parse_pid(const std::string &s, const char *what) {
  return static_cast<uint32_t>(toolkit::parse_decimal(s, 1, kPidMaxLimit, what));
}

std::string validate_cpumask(const std::string &s, long ncpus) {
  auto bad = [&](const std::string &why) {
    return UsageError("invalid CPU mask " + toolkit::quote(s, 200) + ": " + why);
  };
  // A CPU number: decimal digits only.
  auto cpu = [&](const std::string &text, const std::string &item) -> uint64_t {
    try {
      return toolkit::parse_decimal(text, 0, UINT64_MAX, "CPU");
    } catch (const UsageError &) {
      throw bad(toolkit::quote(item, 200) + " is not a CPU number or range");
    }
  };
  if (s.empty()) throw bad("empty");
  std::string norm;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    std::size_t dash = item.find('-');
    uint64_t lo = cpu(item.substr(0, dash), item);
    uint64_t hi = dash == std::string::npos ? lo : cpu(item.substr(dash + 1), item);
    if (lo > hi) throw bad("range " + toolkit::quote(item, 200) + " is reversed");
    if (hi >= static_cast<uint64_t>(ncpus))
      throw bad("CPU " + std::to_string(hi) + " does not exist (this machine has CPUs 0-" + std::to_string(ncpus - 1) +
                ")");
    if (!norm.empty()) norm += ',';
    norm += item;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return norm;
}

namespace {

enum LongOnly { kJson = 256, kTimeout, kVersion };

const struct option kLongOptions[] = {
    {"json", no_argument, nullptr, kJson},
    {"timeout", required_argument, nullptr, kTimeout},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, kVersion},
    {nullptr, 0, nullptr, 0},
};

}  // namespace

Options parse_args(const std::vector<std::string> &args) {
  std::vector<std::string> storage;
  storage.reserve(args.size() + 1);
  storage.emplace_back("taskdelays");
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char *> argv;
  for (auto &a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(storage.size());

  Options o;
  bool mask_given = false, help = false, version = false;
  auto set_mode = [&](Mode m, char letter) {
    if (o.mode != Mode::none && o.mode != m)
      throw UsageError(std::string("option -") + letter + " conflicts with an earlier -p, -t, -c or -l");
    o.mode = m;
  };
  // '+': stop at the first operand; -c takes its command as its argument
  // and ends option parsing, so the command's own options stay its own.
  int first =
      toolkit::parse_options(argc, argv.data(), "+hdiqp:t:c:lm:n:r:o:", kLongOptions, [&](int c, const char *arg) {
        switch (c) {
          case 'h':
            help = true;
            break;
          case kVersion:
            version = true;
            break;
          case 'd':
            o.report.delays = true;
            break;
          case 'i':
            o.report.io = true;
            break;
          case 'q':
            o.report.ctxsw = true;
            break;
          case kJson:
            o.report.json = true;
            break;
          case 'p':
            set_mode(Mode::pid, 'p');
            o.id = parse_pid(arg, "pid");
            break;
          case 't':
            set_mode(Mode::tgid, 't');
            o.id = parse_pid(arg, "tgid");
            break;
          case 'l':
            set_mode(Mode::listen, 'l');
            break;
          case 'm':
            o.cpumask = arg;
            mask_given = true;
            break;
          case 'n':
            o.max_events = static_cast<long>(toolkit::parse_decimal(arg, 1, LONG_MAX, "count for -n"));
            break;
          case 'r':
            o.rcvbuf = static_cast<int>(toolkit::parse_decimal(arg, 1, 1 << 30, "receive buffer size for -r"));
            break;
          case 'o':
            o.output = arg;
            break;
          case kTimeout:
            o.timeout_ms = static_cast<int>(toolkit::parse_decimal(arg, 1, 3600, "timeout (seconds)") * 1000);
            break;
          case 'c':
            set_mode(Mode::command, 'c');
            if (std::string(arg) != "--") o.command.emplace_back(arg);
            return false;
        }
        return true;
      });
  if (help) {
    o.mode = Mode::help;
    return o;
  }
  if (version) {
    o.mode = Mode::version;
    return o;
  }
  if (o.mode == Mode::command) {
    o.command.insert(o.command.end(), storage.begin() + first, storage.end());
    if (o.command.empty()) throw UsageError("option -c needs a command to run");
  } else if (first < argc) {
    throw UsageError("unexpected argument " + toolkit::quote(storage[first], 200));
  }
  if (o.mode == Mode::none) throw UsageError("nothing to do: give one of -p PID, -t TGID, -c COMMAND or -l");
  if (mask_given && o.mode != Mode::listen) throw UsageError("-m CPUMASK is only valid with -l");
  if (o.max_events && o.mode != Mode::listen) throw UsageError("-n COUNT is only valid with -l");
  if (o.rcvbuf && o.mode != Mode::listen) throw UsageError("-r BYTES is only valid with -l");
  if (o.report.io && o.mode == Mode::tgid)
    throw UsageError(
        "-i needs a per-thread query (-p, -c or -l): the kernel does not sum I/O "
        "accounting over a thread group");
  if (o.mode == Mode::listen) {
    long ncpus = sysconf(_SC_NPROCESSORS_CONF);
    if (ncpus < 1) ncpus = 1;
    o.cpumask = mask_given ? validate_cpumask(o.cpumask, ncpus)
                           : (ncpus == 1 ? std::string("0") : "0-" + std::to_string(ncpus - 1));
  }
  return o;
}

}  // namespace taskdelays
