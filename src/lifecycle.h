// The allocator's life cycle: start-up, thread exit and fork.
//
// lifecycle.cc sits above every layer: it includes them all, takes their
// locks for fork() in rank order (lock.h) and runs their after-fork repairs.
// No layer includes a header above its own; the two calls below are the
// only way up, made by the thread cache's slow path (thread_cache.cc), and
// this header includes nothing of the layers.
#pragma once

namespace spanalloc {

class ThreadCache;

// Reads the options, registers the thread-exit key and the fork handlers.
// Cheap after the first call (one acquire load). Keeps errno.
void EnsureInitialized() noexcept;
// Arranges for ThreadCache::DestroyCurrent to run when the thread exits.
void RegisterThreadExit(ThreadCache *tc);

}  // namespace spanalloc
