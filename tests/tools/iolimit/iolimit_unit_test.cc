// Unit tests of iolimit's parsers: rates, device resolution on a fake
// sysfs tree (partition -> disk), mountinfo, io.stat, blkio.throttle stats.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cgroup.h"
#include "common/diag.h"
#include "device.h"
#include "units.h"

using namespace iolimit;

TEST(Rate, SuffixesAreBinary) {
  EXPECT_EQ(parse_rate("100", "--wbps", false), 100u);
  EXPECT_EQ(parse_rate("1K", "--wbps", false), 1024u);
  EXPECT_EQ(parse_rate("1k", "--wbps", false), 1024u);
  EXPECT_EQ(parse_rate("1M", "--wbps", false), 1048576u);
  EXPECT_EQ(parse_rate("1Mi", "--wbps", false), 1048576u);
  EXPECT_EQ(parse_rate("3G", "--rbps", false), 3ull << 30);
  EXPECT_EQ(parse_rate("2T", "--rbps", false), 2ull << 40);
  EXPECT_EQ(parse_rate("4294967295", "--wiops", true), 4294967295u);
}

TEST(Rate, RejectsBadValues) {
  for (const char *bad :
       {"", "0", "0K", "-5", "1.5M", "10XB", "M", "1 M", " 1", "1MB", "99999999999999999999", "16777216T"})
    EXPECT_THROW(parse_rate(bad, "--wbps", false), toolkit::UsageError) << bad;
  EXPECT_THROW(parse_rate("4294967296", "--riops", true), toolkit::UsageError);
  try {
    parse_rate("0", "--wbps", false);
  } catch (const toolkit::UsageError &e) {
    EXPECT_NE(std::string(e.what()).find("greater than 0"), std::string::npos);
  }
}

TEST(Rate, LongValuesAreCutAndEscapedInMessages) {
  std::string big(100000, '7');
  big += "x";
  try {
    parse_rate(big, "--wbps", false);
    FAIL() << "accepted";
  } catch (const toolkit::UsageError &e) {
    EXPECT_LT(std::string(e.what()).size(), 200u);
  }
  try {
    parse_rate("1\nforged line", "--wbps", false);
    FAIL() << "accepted";
  } catch (const toolkit::UsageError &e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/iolimit-sysfs.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    mk("/devices/block/sda/sda1");
    mk("/dev/block");
    put("/devices/block/sda/dev", "8:0\n");
    put("/devices/block/sda/uevent", "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n");
    put("/devices/block/sda/sda1/dev", "8:1\n");
    put("/devices/block/sda/sda1/partition", "1\n");
    put("/devices/block/sda/sda1/uevent", "DEVNAME=sda1\nDEVTYPE=partition\n");
    ASSERT_EQ(symlink((root_ + "/devices/block/sda").c_str(), (root_ + "/dev/block/8:0").c_str()), 0);
    ASSERT_EQ(symlink((root_ + "/devices/block/sda/sda1").c_str(), (root_ + "/dev/block/8:1").c_str()), 0);
  }
  void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }
  void mk(const std::string &p) { std::system(("mkdir -p '" + root_ + p + "'").c_str()); }
  void put(const std::string &p, const std::string &s) { std::ofstream(root_ + p) << s; }
  std::string root_;
};

TEST_F(FakeSysfs, WholeDiskStays) {
  BlockDevice d = resolve_device("8:0", root_);
  EXPECT_EQ(d.id(), "8:0");
  EXPECT_EQ(d.name, "sda");
}

TEST_F(FakeSysfs, PartitionMapsToItsDisk) {
  BlockDevice d = resolve_device("8:1", root_);
  EXPECT_EQ(d.id(), "8:0");
  EXPECT_EQ(d.name, "sda");
}

TEST_F(FakeSysfs, UnknownDeviceIsAnError) { EXPECT_THROW(resolve_device("8:99", root_), std::runtime_error); }

TEST(Device, PathsAndPseudoFilesystems) {
  EXPECT_THROW(resolve_device("/no/such/path"), std::runtime_error);
  EXPECT_THROW(resolve_device("/proc/self/status"), std::runtime_error);  // major 0
  EXPECT_THROW(resolve_device("/dev/null"), std::runtime_error);          // character device
}

TEST(Mountinfo, FindsV2AndV1Blkio) {
  const char *text =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  CgroupMounts m = parse_mountinfo(text);
  EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
  EXPECT_EQ(m.v1_blkio, "/sys/fs/cgroup/blkio");
  CgroupMounts only_v2 = parse_mountinfo("29 1 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
  EXPECT_EQ(only_v2.v2, "/sys/fs/cgroup");
  EXPECT_TRUE(only_v2.v1_blkio.empty());
  CgroupMounts combined = parse_mountinfo("40 31 0:40 / /sys/fs/cgroup/blkio,cpu rw - cgroup cgroup rw,cpu,blkio\n");
  EXPECT_EQ(combined.v1_blkio, "/sys/fs/cgroup/blkio,cpu");
}

TEST(Stats, IoStatPicksTheDevice) {
  BlockDevice d{254, 0, "vda"};
  IoStats s = parse_io_stat(
      "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"
      "254:0 rbytes=4096 wbytes=5242880 rios=1 wios=20 dbytes=0 dios=0 cost.vrate=100.00\n",
      d);
  EXPECT_EQ(s.rbytes, 4096u);
  EXPECT_EQ(s.wbytes, 5242880u);
  EXPECT_EQ(s.rios, 1u);
  EXPECT_EQ(s.wios, 20u);
  IoStats none = parse_io_stat("", d);
  EXPECT_EQ(none.wbytes, 0u);
}

TEST(Stats, BlkioThrottleV1) {
  BlockDevice d{254, 0, "vda"};
  IoStats s = parse_blkio_throttle(
      "254:0 Read 8192\n254:0 Write 4194304\n254:0 Sync 4194304\n254:0 Async 0\n254:0 Discard 0\n"
      "254:0 Total 4202496\n7:0 Write 77\nTotal 4202496\n",
      "254:0 Read 2\n254:0 Write 16\n254:0 Total 18\nTotal 18\n", d);
  EXPECT_EQ(s.rbytes, 8192u);
  EXPECT_EQ(s.wbytes, 4194304u);
  EXPECT_EQ(s.rios, 2u);
  EXPECT_EQ(s.wios, 16u);
}

TEST(IoMax, LineHasOnlyGivenKeys) {
  BlockDevice d{254, 0, "vda"};
  Limits l;
  l.wbps = 1048576;
  l.riops = 100;
  EXPECT_EQ(io_max_line(d, l), "254:0 wbps=1048576 riops=100");
  EXPECT_TRUE(has_controller("cpuset cpu io memory\n", "io"));
  EXPECT_FALSE(has_controller("hugetlb\n", "io"));
  EXPECT_FALSE(has_controller("iocost\n", "io"));
}
