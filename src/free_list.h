// Free-list links: how a free small object points at the next one, in the
// thread caches' lists and in the central lists' batches (the only places a
// link lives in freed memory; spans track their free objects in a bitmap).
//
// Encoding (safe-linking, as glibc and mimalloc's secure mode do it): a free
// object's first word holds
//     stored = next ^ g_link_secret ^ slot        (slot = the object itself)
// so a link is never a usable pointer in memory, differs from slot to slot,
// and garbage written over it decodes to garbage.
//
// The secret is random per process (free_list.cc), set once before the first
// link is written, and shaped so that two facts hold:
//   (1) a decoded link is "plausible" when (link & kLinkBadBits) == 0: a
//       canonical user-space address, 8-aligned (every object is), or null
//       (end of list). Anything written over a link -- zeros, small
//       integers, pointers, text -- decodes to an implausible value except
//       with probability 2^-20 for a random word (17 high bits and 3 low bits
//       must all come out zero).
//   (2) a word of 0 never decodes plausibly (the secret's bit 63 is set).
//       malloc clears the first word of every object it hands out, so a
//       block whose first word decodes plausibly when it is freed is almost
//       surely already free: that is how free() finds double frees without
//       walking any list (mimalloc's trick). The suspect is then checked in
//       full, out of line (LinkIsValid), and only reported if it holds.
// Where links are checked:
//   malloc fast path (allocator.h)   -- plausibility of the popped link, inline;
//                                       an implausible one is reported, not followed.
//   free fast path (allocator.h)     -- the top 16 bits of the freed block's own
//                                       first word: double-free suspicion.
//   thread-cache flush (thread_cache.cc) -- plausibility of each link walked
//                                       (a full check there cost the consumer of a
//                                       producer/consumer pair 2x its instructions).
//   central list, back to the spans  -- full check of each object before it is
//                                       touched: an object start in a small span of
//                                       the class (the span lookup is needed anyway).
//   refill, pops in the slow path    -- full check (CheckedLinkOf).
// A batch parked whole in a transfer slot is checked when its objects are
// popped one by one; a wild link can therefore be followed only if it decodes
// plausibly (2^-20 for a random overwrite) and is then popped or flushed.
#pragma once

#include <cstdint>

#include "common.h"

namespace spanalloc {

// Non-canonical (bits 63..47) or misaligned (bits 2..0) pointer bits.
inline constexpr uint64_t kLinkBadBits = 0xffff800000000007ull;

// The secret's bits 63..48, the same in every process: bit 63 set, bit 62
// clear (facts (2) above and InitLinkSecret's), the rest a pattern rare in
// data (as a double, a negative number near 2^-540; as text, a digit and a
// lone UTF-8 continuation byte). A constant costs the encoding nothing: the
// top 16 bits of every stored link are the secret's, since links and slots
// lie below 2^47, so any freed block shows them anyway; the secret's low 48
// bits stay random. It lets free()'s filter compare with an immediate.
inline constexpr uint16_t kSecretTop16 = 0x9e37;

// Set once (InitLinkSecret) before the first link is written; read without
// a lock afterwards (objects reach a thread only through a lock or the
// user's own synchronisation, which orders the write before any read).
extern uint64_t g_link_secret __attribute__((visibility("hidden")));

// The end of every thread-cache list: an empty list's head, and the link of
// its last object, point at this word of 1 (read-only, never written): it
// decodes to 1 ^ secret ^ its address, whose bits 0..2 are never all 0 (the
// secret's are 0 before it is drawn, 7 after), so never to a plausible
// link. malloc's link check thus sends the pop of an empty list to the slow
// path, with no test of its own.
// (The central lists' batches and the sampler's stashes end with null.)
extern const uint64_t g_list_end __attribute__((visibility("hidden")));
constexpr void *ListEnd() { return const_cast<uint64_t *>(&g_list_end); }

// A free object's first word, as the allocator reads and writes it.
using LinkWord = uint64_t __attribute__((may_alias));
// The top 16 bits of a word (bits 63..48): free()'s double-free filter
// (allocator.h, MayBeFree) reads only these of a block's first word.
SPANALLOC_INLINE uint16_t LinkTop16(const void *word) {
  using Top = uint16_t __attribute__((may_alias));
  return static_cast<const Top *>(word)[__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 3 : 0];
}

SPANALLOC_INLINE uint64_t LinkKey(const void *slot) { return g_link_secret ^ reinterpret_cast<uintptr_t>(slot); }
// The decoded link of free object `slot` (no check).
SPANALLOC_INLINE void *LinkOf(const void *slot) {
  return reinterpret_cast<void *>(*static_cast<const LinkWord *>(slot) ^ LinkKey(slot));
}
SPANALLOC_INLINE void SetLink(void *slot, const void *next) {
  *static_cast<LinkWord *>(slot) = reinterpret_cast<uintptr_t>(next) ^ LinkKey(slot);
}
// kLinkBadBits in memory: the test below reads it as an operand instead of
// loading the 64-bit constant into a register first (one instruction less).
inline const uint64_t g_link_bad_bits __attribute__((visibility("hidden"))) = kLinkBadBits;
SPANALLOC_INLINE bool LinkIsPlausible(const void *link) {
  bool plausible;
  asm("testq %2, %1" : "=@ccz"(plausible) : "r"(link), "m"(g_link_bad_bits));
  return plausible;
}

// Sets the secret if it is not set yet (any thread, any number of times).
void InitLinkSecret() noexcept;
// Full check: link is null or the start of an object in a small span of
// class cl (not in the span's tail past its last object).
bool LinkIsValid(const void *link, uint32_t cl) noexcept;
// The link of free object slot of class cl, checked in full; a fatal report
// (naming func and slot) when it does not hold.
void *CheckedLinkOf(const void *slot, uint32_t cl, const char *func) noexcept;
// The link a free block may hold: null (the end of a central batch or a
// sampler's stash), ListEnd() (the end of a thread-cache list), or an object
// start of class cl. How free() and malloc_usable_size tell a free block.
inline bool FreeBlockLinkIsValid(const void *link, uint32_t cl) noexcept {
  return link == ListEnd() || LinkIsValid(link, cl);
}
// CheckedLinkOf for a thread-cache list: its end (ListEnd) is a valid link too.
void *CheckedListLinkOf(const void *slot, uint32_t cl, const char *func) noexcept;
// A fork child's repair of a list of class cl that a thread stopped in
// mid-push or mid-pop: keeps the objects up to the first link that does not
// hold or up to `length`, whichever comes first, ends the list there with
// `end` (null, or ListEnd for a thread-cache list), and returns how many it
// kept (*head is `end` when none). What is cut off (at most the object in
// flight) is lost, never handed out twice.
uint32_t CutAtFirstBadLink(void **head, uint32_t length, uint32_t cl, void *end = nullptr) noexcept;
// Reports the overwritten link of free object slot of class cl and aborts.
[[noreturn]] SPANALLOC_COLD void FatalCorruptLink(const void *slot, uint32_t cl, const char *func) noexcept;

}  // namespace spanalloc
