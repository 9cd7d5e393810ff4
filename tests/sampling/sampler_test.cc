// The sampler's pieces on their own: the math it does without libm, and the
// countdown's statistics (pre-charged windows sample as often as charging
// one allocation at a time).
#include "sampler.h"

#include <gtest/gtest.h>

#include <cmath>


namespace spanalloc {
namespace {

TEST(SamplerMath, LogMatchesLibm) {
  for (double x : {1e-300, 1e-16, 0x1p-53, 1e-3, 0.1, 0.5, 0.7071, 0.9999999, 1.0, 1.5, 2.0, 10.0, 1e6, 1e300}) {
    EXPECT_NEAR(SamplerLog(x), std::log(x), 1e-12 * std::max(1.0, std::fabs(std::log(x)))) << x;
  }
}

TEST(SamplerMath, OneMinusExpNegMatchesLibm) {
  for (double x : {0.0, 1e-12, 3e-5, 1e-3, 0.1, 0.49, 0.5, 0.69, 1.0, 3.0, 20.0, 700.0, 800.0}) {
    double want = -std::expm1(-x);
    EXPECT_NEAR(SamplerOneMinusExpNeg(x), want, 1e-12 * std::max(want, 1e-300) + 1e-300) << x;
  }
}

// Sets the rates for one test; thread caches of this process are not in
// sampling mode (g_sampler.on stays false), only SampleCountdown reads these.
class Rates {
 public:
  Rates(uint64_t profile, uint64_t guard) : saved_(g_sampler) {
    g_sampler.profile_rate = profile;
    g_sampler.guard_every = guard;
  }
  ~Rates() { g_sampler = saved_; }

 private:
  SamplerConfig saved_;
};

// Over many allocations of size s, the share sampled is 1 - exp(-s / rate),
// whether each is charged alone or most of them in pre-charged windows.
TEST(SampleCountdown, SamplesBytesAtTheRateWithAndWithoutWindows) {
  Rates rates(4096, 0);
  for (size_t size : {16, 512, 4096, 20000}) {
    for (bool windows : {false, true}) {
      SampleCountdown c;
      c.Start(size * 7 + windows);
      const long n = 400000;
      long samples = 0;
      for (long done = 0; done < n;) {
        samples += (c.Charge(size) & kSampleProfile) != 0;
        done++;
        if (windows) done += c.Precharge(size, 1000);
      }
      double p = -std::expm1(-double(size) / 4096);
      double expected = p * n;
      // Samples are about n/(1/p) draws: allow six standard deviations.
      EXPECT_NEAR(samples, expected, 6 * std::sqrt(expected) + 2) << "size " << size << " windows " << windows;
    }
  }
}

TEST(SampleCountdown, GuardSamplesOneAllocationInN) {
  Rates rates(0, 50);
  SampleCountdown c;
  c.Start(42);
  long samples = 0, n = 200000;
  for (long i = 0; i < n; i++) samples += (c.Charge(64) & kSampleGuard) != 0;
  EXPECT_NEAR(samples, n / 50, 6 * std::sqrt(n / 50.0));
  Rates every(0, 1);
  c.Start(1);
  for (int i = 0; i < 100; i++) EXPECT_EQ(c.Charge(8), unsigned{kSampleGuard});
}

TEST(SampleCountdown, AWindowEndsWhereTheNextSampleFallsDue) {
  Rates rates(1 << 20, 100);
  SampleCountdown c;
  c.Start(3);
  for (int round = 0; round < 1000; round++) {
    uint32_t k = c.Precharge(48, 1000000);
    EXPECT_GT(c.bytes_left(), 0);
    EXPECT_GT(c.allocs_left(), 0);
    EXPECT_EQ(c.Precharge(48, 1), 0u) << "a window is as long as it can be";
    EXPECT_FALSE(c.PrechargeOne(48));
    // The allocation after the window is a sample of one consumer or the other.
    EXPECT_NE(c.Charge(48), 0u) << "round " << round << " window " << k;
  }
}

TEST(SampleCountdown, AConsumerThatIsOffNeverFires) {
  Rates rates(0, 0);
  SampleCountdown c;
  c.Start(9);
  for (int i = 0; i < 100000; i++) ASSERT_EQ(c.Charge(1 << 20), 0u);
  EXPECT_EQ(c.Precharge(1 << 20, 1000), 1000u);
}

}  // namespace
}  // namespace spanalloc
