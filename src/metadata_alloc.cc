#include "metadata_alloc.h"

#include <cstring>

namespace spanalloc {

constinit std::atomic<uint64_t> g_metadata_bytes{0};

void *FixedAllocBase::Alloc() {
  MutexLock l(lock_);
  void *p;
  if (free_ != nullptr) {
    p = free_;
    free_ = free_->next;
    memset(p, 0, size_);
  } else {
    if (bump_left_ < size_) {
      size_t chunk = size_ > kChunk ? RoundUp(size_, kPageSize) : kChunk;
      bump_ = static_cast<char *>(OsMap(chunk, kPageSize));  // zero-filled
      if (bump_ == nullptr) {
        bump_left_ = 0;
        return nullptr;
      }
      bump_left_ = chunk;
      g_metadata_bytes.fetch_add(chunk, std::memory_order_relaxed);
    }
    p = bump_;
    bump_ += size_;
    bump_left_ -= size_;
  }
  in_use_++;
  return p;
}

void FixedAllocBase::Free(void *p) {
  MutexLock l(lock_);
  auto *node = static_cast<FreeNode *>(p);
  node->next = free_;
  free_ = node;
  in_use_--;
}

}  // namespace spanalloc
