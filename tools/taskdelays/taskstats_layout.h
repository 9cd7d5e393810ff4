// taskstats_layout: version-tolerant decoding of the kernel's struct taskstats.
//
// The kernel appends fields to struct taskstats release after release, and
// version 15 even inserted fields in the middle (fixed by version 16, which
// moved them to the end). A reply therefore has to be decoded by its version
// and its length, never by the size of the struct in the installed header
// (Debian 12 ships version 13, 416 bytes; kernel 6.18 sends version 16, 560
// bytes). This file describes every known layout as an ordered field list
// and computes the offsets with the C alignment rules, so no header struct
// is ever copied over the payload.
//
// A field is present in a Record when the layout of the reply's version has
// it and the payload is long enough to hold it. Unknown newer versions are
// decoded with the newest known layout (fields are only appended after 16);
// unknown trailing bytes are ignored.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace taskdelays {

enum class Field : uint8_t {
  version, ac_exitcode, ac_flag, ac_nice,
  cpu_count, cpu_delay_total, blkio_count, blkio_delay_total,
  swapin_count, swapin_delay_total, cpu_run_real_total, cpu_run_virtual_total,
  ac_comm, ac_sched, ac_uid, ac_gid, ac_pid, ac_ppid, ac_btime,
  ac_etime, ac_utime, ac_stime, ac_minflt, ac_majflt,
  coremem, virtmem, hiwater_rss, hiwater_vm,
  read_char, write_char, read_syscalls, write_syscalls,
  read_bytes, write_bytes, cancelled_write_bytes, nvcsw, nivcsw,
  ac_utimescaled, ac_stimescaled, cpu_scaled_run_real_total,
  freepages_count, freepages_delay_total,               // "reclaim"
  thrashing_count, thrashing_delay_total,               // v9
  ac_btime64,                                           // v10
  compact_count, compact_delay_total,                   // v11
  ac_tgid, ac_tgetime, ac_exe_dev, ac_exe_inode,        // v12
  wpcopy_count, wpcopy_delay_total,                     // v13
  irq_count, irq_delay_total,                           // v14
  cpu_delay_max, cpu_delay_min, blkio_delay_max, blkio_delay_min,  // v15 (mid) / v16 (end)
  swapin_delay_max, swapin_delay_min, freepages_delay_max, freepages_delay_min,
  thrashing_delay_max, thrashing_delay_min, compact_delay_max, compact_delay_min,
  wpcopy_delay_max, wpcopy_delay_min, irq_delay_max, irq_delay_min,
  count_
};
inline constexpr std::size_t kFieldCount = static_cast<std::size_t>(Field::count_);
inline constexpr std::size_t kCommLen = 32;  // TS_COMM_LEN
// Newest layout this file knows; newer versions only append fields.
inline constexpr uint16_t kNewestKnownVersion = 16;

std::string_view field_name(Field f);

// One field's place in a given version's layout.
struct FieldSlot {
  Field field;
  std::size_t offset;
  std::size_t size;
};

// The ordered layout of struct taskstats for `version` (clamped to the
// newest known one), with offsets computed from sizes and alignments.
std::vector<FieldSlot> layout_for_version(uint16_t version);
// Size of the whole struct for `version` (rounded up to 8 like the kernel's).
std::size_t struct_size_for_version(uint16_t version);

// A decoded reply. Only fields that are both in the version's layout and
// inside the payload are marked present.
struct Record {
  uint16_t version = 0;
  std::size_t payload_len = 0;
  std::array<uint64_t, kFieldCount> value{};
  std::bitset<kFieldCount> present;
  std::string comm;  // ac_comm, NUL-trimmed; empty when absent

  bool has(Field f) const { return present.test(static_cast<std::size_t>(f)); }
  std::optional<uint64_t> get(Field f) const {
    if (!has(f)) return std::nullopt;
    return value[static_cast<std::size_t>(f)];
  }
  uint64_t get_or(Field f, uint64_t fallback) const { return get(f).value_or(fallback); }
};

// Decodes a TASKSTATS_TYPE_STATS payload. Returns nullopt if the payload is
// too short to hold even the version (2 bytes). Reads unaligned input safely.
std::optional<Record> decode_taskstats(std::span<const std::byte> payload);

// The delay categories the kernel reports, in display order.
struct DelayCategory {
  const char* label;    // human label, e.g. "block I/O"
  const char* key;      // JSON key, e.g. "blkio"
  Field count, total, max, min;
};
std::span<const DelayCategory> delay_categories();

}  // namespace taskdelays
