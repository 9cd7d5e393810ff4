#include "cli.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace taskdelays {
namespace {

bool parse_long(const std::string& s, long& out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtol(s.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

}  // namespace

uint32_t parse_pid(const std::string& s, const char* what) {
  long v = 0;
  if (!parse_long(s, v) || v < 1 || v > kPidMaxLimit)
    throw UsageError(std::string("invalid ") + what + " '" + s + "' (expected a number from 1 to " +
                     std::to_string(kPidMaxLimit) + ")");
  return static_cast<uint32_t>(v);
}

std::string validate_cpumask(const std::string& s, long ncpus) {
  auto bad = [&](const std::string& why) {
    return UsageError("invalid CPU mask '" + s + "': " + why);
  };
  if (s.empty()) throw bad("empty");
  std::string norm;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    std::size_t dash = item.find('-');
    long lo = 0, hi = 0;
    if (dash == std::string::npos) {
      if (!parse_long(item, lo)) throw bad("'" + item + "' is not a CPU number or range");
      hi = lo;
    } else if (!parse_long(item.substr(0, dash), lo) || !parse_long(item.substr(dash + 1), hi)) {
      throw bad("'" + item + "' is not a CPU number or range");
    }
    if (lo > hi) throw bad("range '" + item + "' is reversed");
    if (hi >= ncpus)
      throw bad("CPU " + std::to_string(hi) + " does not exist (this machine has CPUs 0-" +
                std::to_string(ncpus - 1) + ")");
    if (!norm.empty()) norm += ',';
    norm += item;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return norm;
}

Options parse_args(const std::vector<std::string>& args) {
  Options o;
  auto set_mode = [&](Mode m, const std::string& opt) {
    if (o.mode != Mode::none && o.mode != m)
      throw UsageError("option " + opt + " conflicts with an earlier -p, -t, -c or -l");
    o.mode = m;
  };
  auto need_value = [&](std::size_t& i, const std::string& opt) -> const std::string& {
    if (i + 1 >= args.size()) throw UsageError("option " + opt + " needs a value");
    return args[++i];
  };
  bool mask_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      o.mode = Mode::help;
      return o;
    } else if (a == "--version") {
      o.mode = Mode::version;
      return o;
    } else if (a == "-d") {
      o.report.delays = true;
    } else if (a == "-i") {
      o.report.io = true;
    } else if (a == "-q") {
      o.report.ctxsw = true;
    } else if (a == "--json") {
      o.report.json = true;
    } else if (a == "-p") {
      set_mode(Mode::pid, a);
      o.id = parse_pid(need_value(i, a), "pid");
    } else if (a == "-t") {
      set_mode(Mode::tgid, a);
      o.id = parse_pid(need_value(i, a), "tgid");
    } else if (a == "-l") {
      set_mode(Mode::listen, a);
    } else if (a == "-m") {
      o.cpumask = need_value(i, a);
      mask_given = true;
    } else if (a == "-n") {
      long v = 0;
      const std::string& s = need_value(i, a);
      if (!parse_long(s, v) || v < 1) throw UsageError("invalid count '" + s + "' for -n");
      o.max_events = v;
    } else if (a == "-r") {
      long v = 0;
      const std::string& s = need_value(i, a);
      if (!parse_long(s, v) || v < 1 || v > (1L << 30))
        throw UsageError("invalid receive buffer size '" + s + "' for -r");
      o.rcvbuf = static_cast<int>(v);
    } else if (a == "-o") {
      o.output = need_value(i, a);
    } else if (a == "--timeout") {
      long v = 0;
      const std::string& s = need_value(i, a);
      if (!parse_long(s, v) || v < 1 || v > 3600)
        throw UsageError("invalid timeout '" + s + "' (seconds, 1 to 3600)");
      o.timeout_ms = static_cast<int>(v * 1000);
    } else if (a == "-c") {
      set_mode(Mode::command, a);
      std::size_t first = i + 1;
      if (first < args.size() && args[first] == "--") ++first;
      o.command.assign(args.begin() + static_cast<long>(first), args.end());
      if (o.command.empty()) throw UsageError("option -c needs a command to run");
      break;  // everything after -c belongs to the command
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
  if (o.mode == Mode::none) throw UsageError("nothing to do: give one of -p PID, -t TGID, -c COMMAND or -l");
  if (mask_given && o.mode != Mode::listen) throw UsageError("-m CPUMASK is only valid with -l");
  if (o.max_events && o.mode != Mode::listen) throw UsageError("-n COUNT is only valid with -l");
  if (o.rcvbuf && o.mode != Mode::listen) throw UsageError("-r BYTES is only valid with -l");
  if (o.report.io && o.mode == Mode::tgid)
    throw UsageError("-i needs a per-thread query (-p, -c or -l): the kernel does not sum I/O "
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
