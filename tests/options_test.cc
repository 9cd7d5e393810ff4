#include "options.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace spanalloc {
namespace {

class OptionsTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = g_options; }
  void TearDown() override {
    for (const char *n : {"SPANALLOC_RELEASE_DELAY_MS", "SPANALLOC_FREE_CAP_MB", "SPANALLOC_THREAD_CACHE_KB",
                          "SPANALLOC_REPORT", "SPANALLOC_REPORT_FILE", "SPANALLOC_CGROUP_LIMIT", "SPANALLOC_CHECKS",
                          "SPANALLOC_RETAIN", "SPANALLOC_BACKGROUND", "SPANALLOC_HUGEPAGES", "SPANALLOC_MEMORY_LIMIT",
                          "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"})
      unsetenv(n);
    g_options = saved_;
  }
  Options saved_;
};

TEST_F(OptionsTest, ReadsValidSettings) {
  setenv("SPANALLOC_RELEASE_DELAY_MS", "250", 1);
  setenv("SPANALLOC_FREE_CAP_MB", "8", 1);
  setenv("SPANALLOC_THREAD_CACHE_KB", "512", 1);
  setenv("SPANALLOC_REPORT", "1", 1);
  LoadOptions();
  EXPECT_EQ(g_options.release_delay_ms, 250u);
  EXPECT_EQ(g_options.free_cap_bytes, uint64_t{8} << 20);
  EXPECT_EQ(g_options.thread_cache_bytes, uint64_t{512} << 10);
  EXPECT_EQ(g_options.report, ReportFormat::kText);
}

TEST_F(OptionsTest, ReportTakesTextJsonAndAFile) {
  setenv("SPANALLOC_REPORT", "json", 1);
  setenv("SPANALLOC_REPORT_FILE", "/tmp/report-%p.json", 1);
  LoadOptions();
  EXPECT_EQ(g_options.report, ReportFormat::kJson);
  EXPECT_STREQ(g_options.report_file, "/tmp/report-%p.json");
  setenv("SPANALLOC_REPORT", "0", 1);
  LoadOptions();
  EXPECT_EQ(g_options.report, ReportFormat::kNone);
}

TEST_F(OptionsTest, BadReportValuesWarnOnceAndKeepTheDefault) {
  g_options.report = ReportFormat::kNone;
  setenv("SPANALLOC_REPORT", "yes", 1);
  setenv("SPANALLOC_REPORT_FILE", std::string(5000, 'x').c_str(), 1);
  testing::internal::CaptureStderr();
  LoadOptions();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(g_options.report, ReportFormat::kNone);
  EXPECT_EQ(g_options.report_file[0], '\0');
  EXPECT_NE(err.find("spanalloc: ignoring SPANALLOC_REPORT=yes: expected 0, 1 or json\n"), std::string::npos) << err;
  EXPECT_NE(err.find("SPANALLOC_REPORT_FILE="), std::string::npos) << err;
  EXPECT_NE(err.find("path too long"), std::string::npos) << err;
  size_t lines = 0;
  for (char c : err) lines += c == '\n';
  EXPECT_EQ(lines, 2u) << err;
}

TEST_F(OptionsTest, ChecksLevel) {
  setenv("SPANALLOC_CHECKS", "full", 1);
  LoadOptions();
  EXPECT_TRUE(g_options.full_checks);
  setenv("SPANALLOC_CHECKS", "default", 1);
  LoadOptions();
  EXPECT_FALSE(g_options.full_checks);
  setenv("SPANALLOC_CHECKS", "paranoid", 1);
  testing::internal::CaptureStderr();
  LoadOptions();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(g_options.full_checks);
  EXPECT_NE(err.find("spanalloc: ignoring SPANALLOC_CHECKS=paranoid: expected default or full"), std::string::npos)
      << err;
}

TEST_F(OptionsTest, BadValuesAreReportedAndIgnored) {
  uint64_t delay = g_options.release_delay_ms, cache = g_options.thread_cache_bytes;
  setenv("SPANALLOC_RELEASE_DELAY_MS", "soon", 1);
  setenv("SPANALLOC_THREAD_CACHE_KB", "1", 1);                    // below the minimum
  setenv("SPANALLOC_FREE_CAP_MB", "99999999999999999999999", 1);  // overflows
  testing::internal::CaptureStderr();
  LoadOptions();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(g_options.release_delay_ms, delay);
  EXPECT_EQ(g_options.thread_cache_bytes, cache);
  EXPECT_NE(err.find("spanalloc: ignoring SPANALLOC_RELEASE_DELAY_MS=soon"), std::string::npos) << err;
  EXPECT_NE(err.find("SPANALLOC_THREAD_CACHE_KB=1: out of range"), std::string::npos) << err;
  EXPECT_NE(err.find("SPANALLOC_FREE_CAP_MB=99999999999999999999999"), std::string::npos) << err;
}

TEST_F(OptionsTest, ByteSizesTakeSuffixes) {
  uint64_t v = 0;
  EXPECT_TRUE(ParseBytes("123", &v));
  EXPECT_EQ(v, 123u);
  EXPECT_TRUE(ParseBytes("64K", &v));
  EXPECT_EQ(v, uint64_t{64} << 10);
  EXPECT_TRUE(ParseBytes("512m", &v));
  EXPECT_EQ(v, uint64_t{512} << 20);
  EXPECT_TRUE(ParseBytes("2G", &v));
  EXPECT_EQ(v, uint64_t{2} << 30);
  for (const char *bad : {"", "G", "1.5G", "-1", "12T", "lots", "99999999999999999999G"})
    EXPECT_FALSE(ParseBytes(bad, &v)) << bad;
}

TEST_F(OptionsTest, MemoryLimitAndItsSource) {
  setenv("SPANALLOC_MEMORY_LIMIT", "256M", 1);
  LoadOptions();
  EXPECT_EQ(g_options.memory_limit_bytes, uint64_t{256} << 20);
  EXPECT_STREQ(g_options.memory_limit_source, "SPANALLOC_MEMORY_LIMIT");
  setenv("SPANALLOC_MEMORY_LIMIT", "0", 1);
  LoadOptions();
  EXPECT_EQ(g_options.memory_limit_bytes, 0u);
  unsetenv("SPANALLOC_MEMORY_LIMIT");
  setenv("SPANALLOC_CGROUP_LIMIT", "0", 1);
  LoadOptions();
  EXPECT_EQ(g_options.memory_limit_bytes, 0u);
  EXPECT_STREQ(g_options.memory_limit_source, "none");
}

// glibc's knobs: retained bytes = trim threshold + top pad; a negative
// threshold keeps everything; the environment forms are read at start-up.
TEST_F(OptionsTest, GlibcTrimThresholdAndTopPad) {
  setenv("SPANALLOC_RETAIN", "1M", 1);
  LoadOptions();
  EXPECT_EQ(RetainBytes(), uint64_t{1} << 20);
  EXPECT_TRUE(SetGlibcTunable(GlibcTunable::kTopPad, 4096));
  EXPECT_EQ(RetainBytes(), (uint64_t{1} << 20) + 4096);
  EXPECT_TRUE(SetGlibcTunable(GlibcTunable::kTrimThreshold, 128 * 1024));
  EXPECT_EQ(RetainBytes(), uint64_t{128 * 1024 + 4096});
  EXPECT_TRUE(SetGlibcTunable(GlibcTunable::kTrimThreshold, -1));
  EXPECT_EQ(RetainBytes(), ~uint64_t{0});
  EXPECT_FALSE(SetGlibcTunable(GlibcTunable::kTopPad, -5));
  setenv("MALLOC_TRIM_THRESHOLD_", "65536", 1);
  setenv("MALLOC_TOP_PAD_", "100", 1);
  LoadOptions();
  EXPECT_EQ(RetainBytes(), uint64_t{65536 + 100});
}

TEST_F(OptionsTest, CgroupLimitCanBeSwitchedOff) {
  setenv("SPANALLOC_CGROUP_LIMIT", "0", 1);
  g_options.cgroup_limit_bytes = 12345;
  g_options.cgroup_aware = true;
  LoadOptions();
  EXPECT_FALSE(g_options.cgroup_aware);
}

TEST_F(OptionsTest, ReportListsEveryOption) {
  char path[] = "/tmp/spanalloc-options-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  PrintOptions(fd);
  lseek(fd, 0, SEEK_SET);
  char buf[4096] = {};
  ASSERT_GT(read(fd, buf, sizeof buf - 1), 0);
  close(fd);
  unlink(path);
  for (const char *n : {"SPANALLOC_RELEASE_DELAY_MS", "SPANALLOC_FREE_CAP_MB", "SPANALLOC_THREAD_CACHE_KB",
                        "SPANALLOC_REPORT", "SPANALLOC_REPORT_FILE", "SPANALLOC_CGROUP_LIMIT", "SPANALLOC_RETAIN",
                        "SPANALLOC_BACKGROUND", "SPANALLOC_HUGEPAGES", "SPANALLOC_MEMORY_LIMIT", "memory limit:"})
    EXPECT_NE(std::string(buf).find(n), std::string::npos) << n;
}

}  // namespace
}  // namespace spanalloc
