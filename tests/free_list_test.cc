// Free-list link encoding (free_list.h): links are stored encoded, decode
// back exactly, and garbage over a link decodes to something the checks
// reject.
#include "free_list.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "allocator.h"
#include "central_list.h"
#include "page_map.h"

namespace spanalloc {
namespace {

class FreeListTest : public ::testing::Test {
 protected:
  void SetUp() override { EnsureInitialized(); }
};

TEST_F(FreeListTest, SecretIsSetAndShaped) {
  ASSERT_NE(g_link_secret, 0u);
  EXPECT_NE(g_link_secret >> 63, 0u) << "bit 63 set: a cleared word never decodes plausibly";
  EXPECT_EQ((g_link_secret >> 62) & 1, 0u) << "bit 62 clear: an all-ones word never decodes plausibly";
  EXPECT_EQ(g_link_secret >> 48, kSecretTop16) << "free()'s filter compares with the constant";
  EXPECT_EQ(g_link_secret & 7, 7u) << "an aligned pointer never decodes plausibly";
  uint64_t before = g_link_secret;
  InitLinkSecret();
  EXPECT_EQ(g_link_secret, before) << "set once";
}

TEST_F(FreeListTest, LinksAreStoredEncodedAndDecodeExactly) {
  alignas(16) uint64_t slots[4] = {};
  void *next = &slots[3];
  SetLink(&slots[0], next);
  SetLink(&slots[1], next);
  EXPECT_NE(slots[0], reinterpret_cast<uintptr_t>(next)) << "a link is never the plain pointer";
  EXPECT_NE(slots[0], slots[1]) << "the same link differs from slot to slot";
  EXPECT_EQ(LinkOf(&slots[0]), next);
  EXPECT_EQ(LinkOf(&slots[1]), next);
  SetLink(&slots[2], nullptr);
  EXPECT_NE(slots[2], 0u);
  EXPECT_EQ(LinkOf(&slots[2]), nullptr);
  EXPECT_TRUE(LinkIsPlausible(LinkOf(&slots[2])));
}

TEST_F(FreeListTest, OverwrittenLinksDecodeImplausibly) {
  alignas(16) uint64_t slot[2];
  // What a program typically writes over freed memory.
  for (uint64_t w : {uint64_t{0}, ~uint64_t{0}, uint64_t{0x4141414141414141}, uint64_t{1}, uint64_t{42},
                     reinterpret_cast<uintptr_t>(&slot), reinterpret_cast<uintptr_t>(&slot[1]),
                     uint64_t{0x3ff0000000000000} /* 1.0 */}) {
    slot[0] = w;
    EXPECT_FALSE(LinkIsPlausible(LinkOf(&slot[0]))) << std::hex << w;
  }
  // Random words: a plausible decode is a 2^-20 event.
  std::mt19937_64 rng(12345);
  int plausible = 0;
  const int kTries = 1 << 20;
  for (int i = 0; i < kTries; i++) {
    slot[0] = rng();
    plausible += LinkIsPlausible(LinkOf(&slot[0]));
  }
  EXPECT_LT(plausible, 16) << "of " << kTries;
}

// free()'s filter (allocator.h, MayBeFree) reads only the top 16 bits of
// the block's first word; it must say exactly what the whole decoded word
// says: bits 63..48 of the link clear.
TEST_F(FreeListTest, TopBitsFilterEqualsTheDecodedWordTest) {
  alignas(16) uint64_t slots[2];
  std::mt19937_64 rng(777);
  auto decoded_test = [](const void *slot) { return (reinterpret_cast<uintptr_t>(LinkOf(slot)) >> 48) == 0; };
  int suspects = 0;
  for (int i = 0; i < (1 << 18); i++) {
    void *slot = &slots[i & 1];
    uint64_t w = rng();
    // Half the words random, half a link (encoded as free() writes it) with
    // some bits flipped, so that both outcomes are exercised.
    if (i & 2) {
      SetLink(slot, reinterpret_cast<void *>((w & 0x7ffffffffff8) | (i & 4 ? 0 : uint64_t{1} << (48 + i % 16))));
    } else {
      memcpy(slot, &w, 8);
    }
    ASSERT_EQ(MayBeFree(slot), decoded_test(slot)) << std::hex << *static_cast<uint64_t *>(slot);
    suspects += MayBeFree(slot);
  }
  EXPECT_GT(suspects, 1 << 14) << "the links written as free() writes them";
  // A cleared first word (malloc's) is never a suspect; a freed block always is.
  slots[0] = 0;
  EXPECT_FALSE(MayBeFree(&slots[0]));
  for (uint64_t w : {uint64_t{0x41} /* a program's byte at p[0] */, ~uint64_t{0}, uint64_t(-42),
                     reinterpret_cast<uintptr_t>(&slots[1])}) {
    slots[0] = w;
    EXPECT_FALSE(MayBeFree(&slots[0])) << std::hex << w;
  }
  SetLink(&slots[0], ListEnd());
  EXPECT_TRUE(MayBeFree(&slots[0]));
  SetLink(&slots[0], nullptr);
  EXPECT_TRUE(MayBeFree(&slots[0]));
}

TEST_F(FreeListTest, FullCheckAcceptsOnlyObjectStartsOfTheClass) {
  const uint32_t cl = 9;
  const uint32_t size = kClassShape[cl].size;
  void *h, *t;
  ASSERT_EQ(g_central[cl].RemoveRange(&h, &t, 1), 1);
  char *obj = static_cast<char *>(h);
  EXPECT_TRUE(LinkIsValid(nullptr, cl));
  EXPECT_TRUE(LinkIsValid(obj, cl));
  EXPECT_FALSE(LinkIsValid(obj + 8, cl)) << "interior";
  uint32_t tail_cl = 1;  // a class whose spans have a tail of waste
  while ((kClassShape[tail_cl].pages * kPageSize) % kClassShape[tail_cl].size == 0) tail_cl++;
  void *th, *tt;
  ASSERT_EQ(g_central[tail_cl].RemoveRange(&th, &tt, 1), 1);
  char *past_last = reinterpret_cast<char *>(EntrySpanStart(ClassEntry(th))) +
                    size_t(kClassShape[tail_cl].objects) * kClassShape[tail_cl].size;
  EXPECT_TRUE(LinkIsValid(past_last - kClassShape[tail_cl].size, tail_cl)) << "the last object";
  EXPECT_FALSE(LinkIsValid(past_last, tail_cl)) << "in the tail, a multiple of the size from the start";
  SetLink(th, nullptr);
  g_central[tail_cl].InsertRange(th, 1);
  EXPECT_FALSE(LinkIsValid(obj, cl + 1)) << "other class";
  static char not_heap[64];
  EXPECT_FALSE(LinkIsValid(not_heap, cl)) << "not ours";
  EXPECT_FALSE(LinkIsValid(reinterpret_cast<void *>(uintptr_t{0xffff800000001000}), cl)) << "non-canonical";
  // A link read back through CheckedLinkOf; a corrupted one is fatal.
  SetLink(obj, obj + size);
  if (ClassEntry(obj + size) == ClassEntry(obj)) {
    EXPECT_EQ(CheckedLinkOf(obj, cl, "test"), obj + size);
  }
  memset(obj, 0x41, 8);
  EXPECT_DEATH(CheckedLinkOf(obj, cl, "test"),
               "spanalloc: free-list corruption of 0x[0-9a-f]+ \\(test: [0-9]+-byte block, free, its link overwritten");
  SetLink(obj, nullptr);
  g_central[cl].InsertRange(obj, 1);
  EXPECT_EQ(g_central[cl].Validate(), nullptr);
}

}  // namespace
}  // namespace spanalloc
