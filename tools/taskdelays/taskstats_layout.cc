#include "taskstats_layout.h"

#include <cstring>

namespace taskdelays {
namespace {

struct Spec {
  Field field;
  uint8_t size;
  uint8_t align;
};

constexpr Spec u8(Field f, uint8_t align = 1) { return {f, 1, align}; }
constexpr Spec u16(Field f) { return {f, 2, 2}; }
constexpr Spec u32(Field f, uint8_t align = 4) { return {f, 4, align}; }
constexpr Spec u64(Field f) { return {f, 8, 8}; }

// Appends the max/min pair of one delay category.
void add_max_min(std::vector<Spec>& out, Field max, Field min) {
  out.push_back(u64(max));
  out.push_back(u64(min));
}

// The ordered field list of struct taskstats as sent by kernel `version`.
// Fields introduced after `version` are left out; version 15 carries the
// max/min pairs right after each category's total, version 16 at the end.
std::vector<Spec> specs_for_version(uint16_t version) {
  using F = Field;
  const bool v15_mid = version == 15;
  std::vector<Spec> s;
  s.reserve(kFieldCount + 2);
  s.push_back(u16(F::version));
  s.push_back(u32(F::ac_exitcode));
  s.push_back(u8(F::ac_flag));
  s.push_back(u8(F::ac_nice));
  s.push_back(u64(F::cpu_count));  // __attribute__((aligned(8)))
  s.push_back(u64(F::cpu_delay_total));
  if (v15_mid) add_max_min(s, F::cpu_delay_max, F::cpu_delay_min);
  s.push_back(u64(F::blkio_count));
  s.push_back(u64(F::blkio_delay_total));
  if (v15_mid) add_max_min(s, F::blkio_delay_max, F::blkio_delay_min);
  s.push_back(u64(F::swapin_count));
  s.push_back(u64(F::swapin_delay_total));
  if (v15_mid) add_max_min(s, F::swapin_delay_max, F::swapin_delay_min);
  s.push_back(u64(F::cpu_run_real_total));
  s.push_back(u64(F::cpu_run_virtual_total));
  s.push_back({F::ac_comm, static_cast<uint8_t>(kCommLen), 1});
  s.push_back(u8(F::ac_sched, 8));  // followed by ac_pad[3]
  s.push_back(u32(F::ac_uid, 8));   // __attribute__((aligned(8)))
  s.push_back(u32(F::ac_gid));
  s.push_back(u32(F::ac_pid));
  s.push_back(u32(F::ac_ppid));
  s.push_back(u32(F::ac_btime));
  for (F f : {F::ac_etime, F::ac_utime, F::ac_stime, F::ac_minflt, F::ac_majflt,
              F::coremem, F::virtmem, F::hiwater_rss, F::hiwater_vm,
              F::read_char, F::write_char, F::read_syscalls, F::write_syscalls,
              F::read_bytes, F::write_bytes, F::cancelled_write_bytes,
              F::nvcsw, F::nivcsw, F::ac_utimescaled, F::ac_stimescaled,
              F::cpu_scaled_run_real_total, F::freepages_count, F::freepages_delay_total})
    s.push_back(u64(f));
  if (v15_mid) add_max_min(s, F::freepages_delay_max, F::freepages_delay_min);
  if (version < 9) return s;
  s.push_back(u64(F::thrashing_count));
  s.push_back(u64(F::thrashing_delay_total));
  if (v15_mid) add_max_min(s, F::thrashing_delay_max, F::thrashing_delay_min);
  if (version < 10) return s;
  s.push_back(u64(F::ac_btime64));
  if (version < 11) return s;
  s.push_back(u64(F::compact_count));
  s.push_back(u64(F::compact_delay_total));
  if (v15_mid) add_max_min(s, F::compact_delay_max, F::compact_delay_min);
  if (version < 12) return s;
  s.push_back(u32(F::ac_tgid));
  s.push_back(u64(F::ac_tgetime));
  s.push_back(u64(F::ac_exe_dev));
  s.push_back(u64(F::ac_exe_inode));
  if (version < 13) return s;
  s.push_back(u64(F::wpcopy_count));
  s.push_back(u64(F::wpcopy_delay_total));
  if (v15_mid) add_max_min(s, F::wpcopy_delay_max, F::wpcopy_delay_min);
  if (version < 14) return s;
  s.push_back(u64(F::irq_count));
  s.push_back(u64(F::irq_delay_total));
  if (v15_mid) add_max_min(s, F::irq_delay_max, F::irq_delay_min);
  if (version < 16) return s;
  for (auto [mx, mn] : {std::pair{F::cpu_delay_max, F::cpu_delay_min},
                        std::pair{F::blkio_delay_max, F::blkio_delay_min},
                        std::pair{F::swapin_delay_max, F::swapin_delay_min},
                        std::pair{F::freepages_delay_max, F::freepages_delay_min},
                        std::pair{F::thrashing_delay_max, F::thrashing_delay_min},
                        std::pair{F::compact_delay_max, F::compact_delay_min},
                        std::pair{F::wpcopy_delay_max, F::wpcopy_delay_min},
                        std::pair{F::irq_delay_max, F::irq_delay_min}})
    add_max_min(s, mx, mn);
  return s;
}

constexpr std::size_t align_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

uint64_t load_uint(const std::byte* p, std::size_t size) {
  // Host byte order, like the kernel writes it; memcpy avoids unaligned loads.
  switch (size) {
    case 1: { uint8_t v; std::memcpy(&v, p, 1); return v; }
    case 2: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    default: { uint64_t v; std::memcpy(&v, p, 8); return v; }
  }
}

constexpr const char* kNames[kFieldCount] = {
  "version", "ac_exitcode", "ac_flag", "ac_nice",
  "cpu_count", "cpu_delay_total", "blkio_count", "blkio_delay_total",
  "swapin_count", "swapin_delay_total", "cpu_run_real_total", "cpu_run_virtual_total",
  "ac_comm", "ac_sched", "ac_uid", "ac_gid", "ac_pid", "ac_ppid", "ac_btime",
  "ac_etime", "ac_utime", "ac_stime", "ac_minflt", "ac_majflt",
  "coremem", "virtmem", "hiwater_rss", "hiwater_vm",
  "read_char", "write_char", "read_syscalls", "write_syscalls",
  "read_bytes", "write_bytes", "cancelled_write_bytes", "nvcsw", "nivcsw",
  "ac_utimescaled", "ac_stimescaled", "cpu_scaled_run_real_total",
  "freepages_count", "freepages_delay_total",
  "thrashing_count", "thrashing_delay_total",
  "ac_btime64",
  "compact_count", "compact_delay_total",
  "ac_tgid", "ac_tgetime", "ac_exe_dev", "ac_exe_inode",
  "wpcopy_count", "wpcopy_delay_total",
  "irq_count", "irq_delay_total",
  "cpu_delay_max", "cpu_delay_min", "blkio_delay_max", "blkio_delay_min",
  "swapin_delay_max", "swapin_delay_min", "freepages_delay_max", "freepages_delay_min",
  "thrashing_delay_max", "thrashing_delay_min", "compact_delay_max", "compact_delay_min",
  "wpcopy_delay_max", "wpcopy_delay_min", "irq_delay_max", "irq_delay_min",
};

constexpr DelayCategory kCategories[] = {
  {"CPU", "cpu", Field::cpu_count, Field::cpu_delay_total, Field::cpu_delay_max, Field::cpu_delay_min},
  {"block I/O", "blkio", Field::blkio_count, Field::blkio_delay_total, Field::blkio_delay_max,
   Field::blkio_delay_min},
  {"swap-in", "swapin", Field::swapin_count, Field::swapin_delay_total, Field::swapin_delay_max,
   Field::swapin_delay_min},
  {"reclaim", "reclaim", Field::freepages_count, Field::freepages_delay_total,
   Field::freepages_delay_max, Field::freepages_delay_min},
  {"thrashing", "thrashing", Field::thrashing_count, Field::thrashing_delay_total,
   Field::thrashing_delay_max, Field::thrashing_delay_min},
  {"compaction", "compact", Field::compact_count, Field::compact_delay_total,
   Field::compact_delay_max, Field::compact_delay_min},
  {"write-protect copy", "wpcopy", Field::wpcopy_count, Field::wpcopy_delay_total,
   Field::wpcopy_delay_max, Field::wpcopy_delay_min},
  {"IRQ", "irq", Field::irq_count, Field::irq_delay_total, Field::irq_delay_max, Field::irq_delay_min},
};

}  // namespace

std::string_view field_name(Field f) {
  auto i = static_cast<std::size_t>(f);
  return i < kFieldCount ? kNames[i] : "?";
}

std::vector<FieldSlot> layout_for_version(uint16_t version) {
  if (version > kNewestKnownVersion) version = kNewestKnownVersion;
  std::vector<FieldSlot> out;
  std::size_t off = 0;
  for (const Spec& s : specs_for_version(version)) {
    off = align_up(off, s.align);
    out.push_back({s.field, off, s.size});
    off += s.size;
  }
  return out;
}

std::size_t struct_size_for_version(uint16_t version) {
  auto slots = layout_for_version(version);
  if (slots.empty()) return 0;
  return align_up(slots.back().offset + slots.back().size, 8);
}

std::optional<Record> decode_taskstats(std::span<const std::byte> payload) {
  if (payload.size() < 2) return std::nullopt;
  Record r;
  r.payload_len = payload.size();
  r.version = static_cast<uint16_t>(load_uint(payload.data(), 2));
  for (const FieldSlot& slot : layout_for_version(r.version)) {
    if (slot.offset + slot.size > payload.size()) break;  // slots are in offset order
    auto idx = static_cast<std::size_t>(slot.field);
    if (slot.field == Field::ac_comm) {
      const char* p = reinterpret_cast<const char*>(payload.data() + slot.offset);
      r.comm.assign(p, strnlen(p, slot.size));
    } else {
      r.value[idx] = load_uint(payload.data() + slot.offset, slot.size);
    }
    r.present.set(idx);
  }
  return r;
}

std::span<const DelayCategory> delay_categories() { return kCategories; }

}  // namespace taskdelays
