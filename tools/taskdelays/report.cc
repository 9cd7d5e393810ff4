#include "report.h"

#include <cinttypes>
#include <cstdio>

#include "common/units.h"

namespace taskdelays {

using toolkit::human_bytes;

namespace {

std::string fmt(const char* f, double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v, unit);
  return buf;
}

std::string u64s(uint64_t v) { return std::to_string(v); }

std::string opt_json(const Record& r, Field f) {
  auto v = r.get(f);
  return v ? u64s(*v) : "null";
}

}  // namespace

std::string human_ns(uint64_t ns) {
  if (ns < 1000) return u64s(ns) + " ns";
  if (ns < 1000000) return fmt("%.1f %s", ns / 1e3, "us");
  if (ns < 1000000000) return fmt("%.3f %s", ns / 1e6, "ms");
  return fmt("%.3f %s", ns / 1e9, "s");
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string render_text(const Record& r, Scope scope, uint32_t id, const std::string& comm_hint,
                        const ReportOptions& opt) {
  std::string out;
  const std::string& comm = r.comm.empty() ? comm_hint : r.comm;
  out += scope == Scope::thread ? "pid " : "tgid ";
  out += std::to_string(id);
  if (!comm.empty()) out += " (" + comm + ")";
  out += ": taskstats v" + std::to_string(r.version) + ", " + std::to_string(r.payload_len) +
         " bytes\n";
  if (scope == Scope::thread && r.has(Field::ac_pid) && r.get_or(Field::ac_pid, 0) != 0) {
    out += "  uid " + u64s(r.get_or(Field::ac_uid, 0)) + "  gid " + u64s(r.get_or(Field::ac_gid, 0)) +
           "  ppid " + u64s(r.get_or(Field::ac_ppid, 0));
    if (r.has(Field::ac_tgid)) out += "  tgid " + u64s(r.get_or(Field::ac_tgid, 0));
    out += "\n";
  }
  if (opt.delays) {
    char line[200];
    std::snprintf(line, sizeof line, "  %-19s %10s %12s %12s %12s %12s\n", "delay", "count", "total",
                  "average", "max", "min");
    out += line;
    for (const DelayCategory& c : delay_categories()) {
      auto count = r.get(c.count);
      auto total = r.get(c.total);
      if (!count || !total) {
        std::snprintf(line, sizeof line, "  %-19s %10s   (not reported by this kernel)\n", c.label, "-");
        out += line;
        continue;
      }
      std::string avg = *count ? human_ns(*total / *count) : "-";
      auto mx = r.get(c.max);
      auto mn = r.get(c.min);
      std::snprintf(line, sizeof line, "  %-19s %10" PRIu64 " %12s %12s %12s %12s\n", c.label, *count,
                    human_ns(*total).c_str(), avg.c_str(), mx ? human_ns(*mx).c_str() : "-",
                    mn ? human_ns(*mn).c_str() : "-");
      out += line;
    }
    if (r.has(Field::cpu_run_real_total))
      out += "  cpu run time: real " + human_ns(r.get_or(Field::cpu_run_real_total, 0)) +
             ", virtual " + human_ns(r.get_or(Field::cpu_run_virtual_total, 0)) + "\n";
  }
  if (opt.io && r.has(Field::cancelled_write_bytes)) {
    out += "  I/O: read " + human_bytes(r.get_or(Field::read_bytes, 0)) + ", written " +
           human_bytes(r.get_or(Field::write_bytes, 0)) + ", cancelled writes " +
           human_bytes(r.get_or(Field::cancelled_write_bytes, 0)) + "\n";
    out += "  syscalls: read " + u64s(r.get_or(Field::read_syscalls, 0)) + " (" +
           human_bytes(r.get_or(Field::read_char, 0)) + "), write " +
           u64s(r.get_or(Field::write_syscalls, 0)) + " (" +
           human_bytes(r.get_or(Field::write_char, 0)) + ")\n";
  }
  if (opt.ctxsw && r.has(Field::nivcsw))
    out += "  context switches: voluntary " + u64s(r.get_or(Field::nvcsw, 0)) + ", involuntary " +
           u64s(r.get_or(Field::nivcsw, 0)) + "\n";
  return out;
}

std::string render_json(const Record& r, Scope scope, uint32_t id, const std::string& comm_hint,
                        const ReportOptions& opt) {
  const std::string& comm = r.comm.empty() ? comm_hint : r.comm;
  std::string o = "{";
  o += scope == Scope::thread ? "\"pid\":" : "\"tgid\":";
  o += std::to_string(id);
  o += ",\"comm\":" + json_quote(comm);
  o += ",\"version\":" + std::to_string(r.version);
  o += ",\"payload_bytes\":" + std::to_string(r.payload_len);
  if (scope == Scope::thread) {
    for (Field f : {Field::ac_uid, Field::ac_gid, Field::ac_ppid, Field::ac_tgid, Field::ac_exitcode,
                    Field::ac_etime, Field::ac_utime, Field::ac_stime})
    {
      o += ",\"";
      o += field_name(f);
      o += "\":";
      o += opt_json(r, f);
    }
  }
  if (opt.delays) {
    o += ",\"delays\":{";
    bool first = true;
    for (const DelayCategory& c : delay_categories()) {
      if (!first) o += ",";
      first = false;
      o += '"';
      o += c.key;
      o += "\":";
      auto count = r.get(c.count);
      auto total = r.get(c.total);
      if (!count || !total) {
        o += "null";
        continue;
      }
      o += "{\"count\":" + u64s(*count) + ",\"total_ns\":" + u64s(*total) +
           ",\"average_ns\":" + (*count ? u64s(*total / *count) : std::string("null")) +
           ",\"max_ns\":" + opt_json(r, c.max) + ",\"min_ns\":" + opt_json(r, c.min) + "}";
    }
    o += "},\"cpu_run_real_total_ns\":" + opt_json(r, Field::cpu_run_real_total) +
         ",\"cpu_run_virtual_total_ns\":" + opt_json(r, Field::cpu_run_virtual_total);
  }
  if (opt.io)
    o += ",\"io\":{\"read_bytes\":" + opt_json(r, Field::read_bytes) +
         ",\"write_bytes\":" + opt_json(r, Field::write_bytes) +
         ",\"cancelled_write_bytes\":" + opt_json(r, Field::cancelled_write_bytes) +
         ",\"read_char\":" + opt_json(r, Field::read_char) +
         ",\"write_char\":" + opt_json(r, Field::write_char) +
         ",\"read_syscalls\":" + opt_json(r, Field::read_syscalls) +
         ",\"write_syscalls\":" + opt_json(r, Field::write_syscalls) + "}";
  if (opt.ctxsw)
    o += ",\"context_switches\":{\"voluntary\":" + opt_json(r, Field::nvcsw) +
         ",\"involuntary\":" + opt_json(r, Field::nivcsw) + "}";
  return o + "}";
}

}  // namespace taskdelays
