// Batch shards: a large batch's training call split into kShards fixed shards of its rows, each
// running the whole call (forward, loss, BPTT) on its own rows into its own gradients, which are
// then added in shard order. On this project's VM a cache line written by one core costs the
// other 60-100 ns to read with the host's two vCPUs on one die and 350-650 ns with them apart;
// a call whose phases are each split across the cores makes every phase read what the other
// core wrote. Run side by side, one shard per core, each core reads only its own data until the
// final sum. The shards depend on the batch alone, never on the thread count, so every result is
// bitwise the same for any number of threads. Used by the default model (rnn.cc) and the engine
// models (model.cc).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/kernels.h"
#include "parallel.h"
#include "thread_pool.h"

namespace bptt {

constexpr size_t kShards = 2;

// A batch runs as shards from kShards * kMinShardRows rows (with enough recurrent work, which
// each driver judges). Each shard's per-step products then have at least two register tiles of
// rows. Smaller shards cost on one thread, where the shards run in turn and each streams the
// recurrent weight through the cache every step for half the rows. Measured at 16 rows:
// - C2's half batch: within 2 % of the whole batch on one thread.
// - L1 (an LSTM, B = 32, W_hh 1 MB): 17.0 ms against 16.0 whole on one thread. On two threads,
//   9.10 ms against 11.07 with the host's vCPUs apart, and 9.15 against 9.00 with them on one die.
constexpr size_t kMinShardRows = 16;

// Shard s's rows [first, first + count) of a batch: whole register tiles, as even as they go.
struct ShardRows {
  size_t first, count;
};

inline ShardRows ShardOf(const kernels::KernelSet& ks, size_t batch, size_t s) {
  const size_t mr = static_cast<size_t>(ks.mr), tiles = (batch + mr - 1) / mr;
  const size_t b0 = std::min(batch, tiles * s / kShards * mr), b1 = std::min(batch, tiles * (s + 1) / kShards * mr);
  return {b0, b1 - b0};
}

// Runs fn(inner_pool, s) for every shard: side by side, one per thread and no pool inside, with
// fewer than 2 * kShards threads; else one after the other with every thread inside each.
template <class Fn>
void RunShards(ThreadPool* pool, Fn&& fn) {
  const size_t threads = pool ? pool->num_threads() : 1;
  if (threads >= 2 && threads < 2 * kShards) {
    auto side_by_side = [&](size_t task, size_t) { fn(static_cast<ThreadPool*>(nullptr), task); };
    pool->parallel_for(kShards, side_by_side);
  } else {
    for (size_t s = 0; s < kShards; ++s) fn(pool, s);
  }
}

// total[j] += part(s)[j] for s = 1 .. kShards-1 in that order, j split across the pool.
template <class PartFn>
void AddShardParts(ThreadPool* pool, float* total, size_t n, PartFn&& part) {
  ForRows(pool, n, 4096, [&](size_t begin, size_t end) {
    for (size_t s = 1; s < kShards; ++s) {
      const float* p = part(s);
      for (size_t j = begin; j < end; ++j) total[j] += p[j];
    }
  });
}

// Rows [first, first + count) of each of `groups` consecutive blocks of `batch` rows of `width`
// elements (states [L*dirs, B, H], per-step targets [T, B, K]) into dst as `groups` blocks of
// `count` rows; ScatterRows puts them back.
template <class T>
void GatherRows(T* dst, const T* src, size_t groups, size_t batch, ShardRows rows, size_t width) {
  for (size_t g = 0; g < groups; ++g)
    std::memcpy(dst + g * rows.count * width, src + (g * batch + rows.first) * width, rows.count * width * sizeof(T));
}

template <class T>
void ScatterRows(T* dst, const T* src, size_t groups, size_t batch, ShardRows rows, size_t width) {
  for (size_t g = 0; g < groups; ++g)
    std::memcpy(dst + (g * batch + rows.first) * width, src + g * rows.count * width, rows.count * width * sizeof(T));
}

}  // namespace bptt
