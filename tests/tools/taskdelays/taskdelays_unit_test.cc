// Unit tests of taskdelays' version-tolerant decoder, formatting and CLI
// validation. The decoder is checked against the installed kernel header
// (version 13 on Debian 12) and against synthetic replies of the layouts
// that header does not know (14, 15's mid-struct max/min, 16, and a
// hypothetical larger 17).
#include <gtest/gtest.h>
#include <linux/taskstats.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <vector>

#include "cli.h"
#include "report.h"
#include "taskstats_client.h"
#include "taskstats_layout.h"

using namespace taskdelays;

namespace {

std::size_t offset_of(uint16_t version, Field f) {
  for (const FieldSlot& s : layout_for_version(version))
    if (s.field == f) return s.offset;
  ADD_FAILURE() << "field " << field_name(f) << " missing from v" << version;
  return 0;
}

bool in_layout(uint16_t version, Field f) {
  for (const FieldSlot& s : layout_for_version(version))
    if (s.field == f) return true;
  return false;
}

// Builds a payload of `len` bytes for `version` where every u64 field holds
// a value derived from its enum index, so misplaced offsets show up.
std::vector<std::byte> synth(uint16_t version, std::size_t len) {
  std::vector<std::byte> buf(len);
  for (const FieldSlot& s : layout_for_version(version)) {
    if (s.offset + s.size > len) continue;
    uint64_t v = 1000 + static_cast<uint64_t>(s.field);
    if (s.field == Field::version) v = version;
    if (s.field == Field::ac_comm) {
      std::memcpy(buf.data() + s.offset, "worker", 6);
      continue;
    }
    std::memcpy(buf.data() + s.offset, &v, s.size);  // little-endian: low bytes first
  }
  return buf;
}

}  // namespace

#define EXPECT_HEADER_OFFSET(field) \
  EXPECT_EQ(offset_of(TASKSTATS_VERSION, Field::field), offsetof(struct taskstats, field)) << #field

TEST(Layout, MatchesInstalledHeaderForEveryField) {
  static_assert(TASKSTATS_VERSION >= 13, "test written for a v13+ header");
  EXPECT_EQ(struct_size_for_version(TASKSTATS_VERSION), sizeof(struct taskstats));
  EXPECT_HEADER_OFFSET(version);
  EXPECT_HEADER_OFFSET(ac_exitcode);
  EXPECT_HEADER_OFFSET(ac_flag);
  EXPECT_HEADER_OFFSET(ac_nice);
  EXPECT_HEADER_OFFSET(cpu_count);
  EXPECT_HEADER_OFFSET(cpu_delay_total);
  EXPECT_HEADER_OFFSET(blkio_count);
  EXPECT_HEADER_OFFSET(blkio_delay_total);
  EXPECT_HEADER_OFFSET(swapin_count);
  EXPECT_HEADER_OFFSET(swapin_delay_total);
  EXPECT_HEADER_OFFSET(cpu_run_real_total);
  EXPECT_HEADER_OFFSET(cpu_run_virtual_total);
  EXPECT_HEADER_OFFSET(ac_comm);
  EXPECT_HEADER_OFFSET(ac_sched);
  EXPECT_HEADER_OFFSET(ac_uid);
  EXPECT_HEADER_OFFSET(ac_gid);
  EXPECT_HEADER_OFFSET(ac_pid);
  EXPECT_HEADER_OFFSET(ac_ppid);
  EXPECT_HEADER_OFFSET(ac_btime);
  EXPECT_HEADER_OFFSET(ac_etime);
  EXPECT_HEADER_OFFSET(ac_utime);
  EXPECT_HEADER_OFFSET(ac_stime);
  EXPECT_HEADER_OFFSET(ac_minflt);
  EXPECT_HEADER_OFFSET(ac_majflt);
  EXPECT_HEADER_OFFSET(coremem);
  EXPECT_HEADER_OFFSET(virtmem);
  EXPECT_HEADER_OFFSET(hiwater_rss);
  EXPECT_HEADER_OFFSET(hiwater_vm);
  EXPECT_HEADER_OFFSET(read_char);
  EXPECT_HEADER_OFFSET(write_char);
  EXPECT_HEADER_OFFSET(read_syscalls);
  EXPECT_HEADER_OFFSET(write_syscalls);
  EXPECT_HEADER_OFFSET(read_bytes);
  EXPECT_HEADER_OFFSET(write_bytes);
  EXPECT_HEADER_OFFSET(cancelled_write_bytes);
  EXPECT_HEADER_OFFSET(nvcsw);
  EXPECT_HEADER_OFFSET(nivcsw);
  EXPECT_HEADER_OFFSET(ac_utimescaled);
  EXPECT_HEADER_OFFSET(ac_stimescaled);
  EXPECT_HEADER_OFFSET(cpu_scaled_run_real_total);
  EXPECT_HEADER_OFFSET(freepages_count);
  EXPECT_HEADER_OFFSET(freepages_delay_total);
  EXPECT_HEADER_OFFSET(thrashing_count);
  EXPECT_HEADER_OFFSET(thrashing_delay_total);
  EXPECT_HEADER_OFFSET(ac_btime64);
  EXPECT_HEADER_OFFSET(compact_count);
  EXPECT_HEADER_OFFSET(compact_delay_total);
  EXPECT_HEADER_OFFSET(ac_tgid);
  EXPECT_HEADER_OFFSET(ac_tgetime);
  EXPECT_HEADER_OFFSET(ac_exe_dev);
  EXPECT_HEADER_OFFSET(ac_exe_inode);
  EXPECT_HEADER_OFFSET(wpcopy_count);
  EXPECT_HEADER_OFFSET(wpcopy_delay_total);
}

TEST(Layout, SizesOfKnownVersions) {
  EXPECT_EQ(struct_size_for_version(13), 416u);  // Debian 12 header
  EXPECT_EQ(struct_size_for_version(14), 432u);  // + irq
  EXPECT_EQ(struct_size_for_version(15), 560u);  // + 16 max/min, in the middle
  EXPECT_EQ(struct_size_for_version(16), 560u);  // measured on kernel 6.18
  EXPECT_EQ(struct_size_for_version(40), 560u);  // unknown newer: newest known layout
}

TEST(Layout, Version15InsertsMaxMinMidStructAnd16MovesThemToTheEnd) {
  EXPECT_EQ(offset_of(15, Field::cpu_delay_max), 32u);
  EXPECT_EQ(offset_of(15, Field::blkio_count), 48u);
  EXPECT_EQ(offset_of(16, Field::blkio_count), 32u);
  EXPECT_EQ(offset_of(16, Field::cpu_delay_max), 432u);
  EXPECT_EQ(offset_of(16, Field::irq_delay_min), 552u);
  EXPECT_FALSE(in_layout(13, Field::irq_count));
  EXPECT_FALSE(in_layout(14, Field::cpu_delay_max));
  EXPECT_FALSE(in_layout(8, Field::thrashing_count));
}

TEST(Decode, RejectsPayloadWithoutVersion) {
  std::byte one[1]{};
  EXPECT_FALSE(decode_taskstats({one, 1}).has_value());
  EXPECT_FALSE(decode_taskstats({}).has_value());
}

TEST(Decode, EveryVersionRoundTripsEveryField) {
  for (uint16_t v : {8, 9, 10, 11, 12, 13, 14, 15, 16}) {
    auto buf = synth(v, struct_size_for_version(v));
    auto r = decode_taskstats(buf);
    ASSERT_TRUE(r) << v;
    EXPECT_EQ(r->version, v);
    EXPECT_EQ(r->comm, "worker");
    for (const FieldSlot& s : layout_for_version(v)) {
      if (s.field == Field::version || s.field == Field::ac_comm) continue;
      uint64_t want = 1000 + static_cast<uint64_t>(s.field);
      if (s.size < 8) want &= (1ull << (8 * s.size)) - 1;
      EXPECT_EQ(r->get(s.field), want) << "v" << v << " " << field_name(s.field);
    }
  }
}

TEST(Decode, KernelNewerThanHeaderKeepsTailFields) {
  // v16 kernel, 560 bytes: irq and max/min are past the v13 header's end.
  auto r = decode_taskstats(synth(16, 560));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get(Field::irq_count), 1000u + static_cast<uint64_t>(Field::irq_count));
  EXPECT_EQ(r->get(Field::cpu_delay_max), 1000u + static_cast<uint64_t>(Field::cpu_delay_max));
}

TEST(Decode, FutureVersionWithLongerPayloadIgnoresUnknownTail) {
  auto buf = synth(16, 560);
  uint16_t v17 = 17;
  std::memcpy(buf.data(), &v17, 2);
  buf.resize(560 + 8 * 16 * 2, std::byte{0x7f});  // v17 appends max timestamps
  auto r = decode_taskstats(buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->version, 17);
  EXPECT_EQ(r->payload_len, buf.size());
  EXPECT_EQ(r->get(Field::irq_delay_min), 1000u + static_cast<uint64_t>(Field::irq_delay_min));
}

TEST(Decode, KernelOlderThanHeaderOrTruncatedMarksMissingFields) {
  // A v16 version number but only 432 bytes: max/min must be absent, not garbage.
  auto r = decode_taskstats(synth(16, 432));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has(Field::irq_delay_total));
  EXPECT_FALSE(r->has(Field::cpu_delay_max));
  // v8 reply: no thrashing, compaction, wpcopy or irq.
  auto old = decode_taskstats(synth(8, struct_size_for_version(8)));
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->has(Field::freepages_delay_total));
  EXPECT_FALSE(old->has(Field::thrashing_count));
  EXPECT_FALSE(old->has(Field::wpcopy_count));
  // Version 13 payload padded to 560 bytes: the padding is not read as v16 fields.
  auto padded = decode_taskstats(synth(13, 560));
  ASSERT_TRUE(padded);
  EXPECT_FALSE(padded->has(Field::irq_count));
  EXPECT_FALSE(padded->has(Field::cpu_delay_max));
}

TEST(Decode, UnalignedInput) {
  auto buf = synth(16, 560);
  std::vector<std::byte> shifted(buf.size() + 3);
  std::memcpy(shifted.data() + 3, buf.data(), buf.size());
  auto r = decode_taskstats(std::span<const std::byte>(shifted).subspan(3));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get(Field::cpu_delay_total), 1000u + static_cast<uint64_t>(Field::cpu_delay_total));
}

TEST(Report, TextShowsEveryCategoryAndMissingOnes) {
  auto r = decode_taskstats(synth(13, 416));
  ASSERT_TRUE(r);
  std::string t = render_text(*r, Scope::thread, 42, "", {true, true, true, false});
  for (const char* label : {"CPU", "block I/O", "swap-in", "reclaim", "thrashing", "compaction",
                            "write-protect copy", "IRQ", "context switches", "I/O: read"})
    EXPECT_NE(t.find(label), std::string::npos) << label;
  EXPECT_NE(t.find("(not reported by this kernel)"), std::string::npos);  // irq on v13
}

TEST(Report, JsonUsesNullForAbsentFields) {
  auto r = decode_taskstats(synth(13, 416));
  ASSERT_TRUE(r);
  std::string j = render_json(*r, Scope::thread, 42, "", {true, true, true, true});
  EXPECT_NE(j.find("\"irq\":null"), std::string::npos);
  EXPECT_NE(j.find("\"max_ns\":null"), std::string::npos);
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
}

TEST(Report, HumanUnits) {
  EXPECT_EQ(human_ns(0), "0 ns");
  EXPECT_EQ(human_ns(999), "999 ns");
  EXPECT_EQ(human_ns(17400), "17.4 us");
  EXPECT_EQ(human_ns(1234000), "1.234 ms");
  EXPECT_EQ(human_ns(2500000000ull), "2.500 s");
  EXPECT_EQ(json_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
}

TEST(Cli, PidValidation) {
  EXPECT_EQ(parse_pid("1", "pid"), 1u);
  EXPECT_EQ(parse_pid("4194304", "pid"), 4194304u);
  for (const char* bad : {"", "0", "-5", "abc", "12x", "4194305", "99999999999", "+3", " 7", "99999999999999999999"})
    EXPECT_THROW(parse_pid(bad, "pid"), UsageError) << bad;
}

TEST(Cli, CpuMaskValidation) {
  EXPECT_EQ(validate_cpumask("0-3,5", 8), "0-3,5");
  EXPECT_EQ(validate_cpumask("1", 2), "1");
  for (const char* bad : {"", "abc", "0-99999", "3-1", "1,", ",1", "1-", "-1", "0-2", "2"})
    EXPECT_THROW(validate_cpumask(bad, 2), UsageError) << bad;
}

TEST(Cli, ModesAndConflicts) {
  auto o = parse_args({"-p", "12", "-i", "-q", "--json"});
  EXPECT_EQ(o.mode, Mode::pid);
  EXPECT_EQ(o.id, 12u);
  EXPECT_TRUE(o.report.io && o.report.ctxsw && o.report.json);
  auto c = parse_args({"-i", "-c", "--", "ls", "-l", "-p"});
  EXPECT_EQ(c.mode, Mode::command);
  EXPECT_EQ(c.command, (std::vector<std::string>{"ls", "-l", "-p"}));
  EXPECT_EQ(parse_args({"-l"}).mode, Mode::listen);
  EXPECT_THROW(parse_args({}), UsageError);
  EXPECT_THROW(parse_args({"-p", "1", "-t", "2"}), UsageError);
  EXPECT_THROW(parse_args({"-t", "2", "-i"}), UsageError);
  EXPECT_THROW(parse_args({"-p", "1", "-m", "0"}), UsageError);
  EXPECT_THROW(parse_args({"-c"}), UsageError);
  EXPECT_THROW(parse_args({"-p"}), UsageError);
  EXPECT_THROW(parse_args({"-x"}), UsageError);
  EXPECT_THROW(parse_args({"-l", "-n", "0"}), UsageError);
  EXPECT_THROW(parse_args({"-p", "1", "--timeout", "0"}), UsageError);
}

TEST(Client, TimeoutIsAnErrorNotAHang) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
  try {
    wait_for_reply(sv[0], 100);
    ADD_FAILURE() << "no timeout";
  } catch (const TaskstatsError& e) {
    EXPECT_EQ(e.kind, ErrorKind::timeout);
    EXPECT_STREQ(e.what(), "timed out after 0.1 s waiting for the kernel's taskstats reply");
  }
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  EXPECT_NO_THROW(wait_for_reply(sv[0], 100));
  close(sv[0]);
  close(sv[1]);
}

TEST(Client, ErrorsAreDescribedInDomainWords) {
  EXPECT_NE(describe(TaskstatsError(ErrorKind::no_taskstats, 0, "x")).find("CONFIG_TASKSTATS"), std::string::npos);
  EXPECT_NE(describe(TaskstatsError(ErrorKind::permission, 1, "x")).find("CAP_NET_ADMIN"), std::string::npos);
  EXPECT_EQ(describe(TaskstatsError(ErrorKind::no_such_process, 3, "no such process: pid 7")),
            "no such process: pid 7");
}
