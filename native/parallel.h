// How the recurrent drivers split work across the thread pool. Every split partitions output rows
// into contiguous ranges (never a reduction), so which thread runs a range cannot change any bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "gemm.h"
#include "kernels/kernels.h"
#include "thread_pool.h"

namespace bptt {

constexpr MatrixRef Plain(const float* data, size_t ld) { return {data, ld, Trans::kNo}; }
constexpr MatrixRef Transposed(const float* data, size_t ld) { return {data, ld, Trans::kYes}; }

// Runs fn(begin, end) over contiguous ranges of rows [0, n), one per task, at least
// min_rows_per_task rows each.
template <class RowFn>
void ForRows(ThreadPool* pool, size_t n, size_t min_rows_per_task, RowFn&& fn) {
  const size_t threads = pool ? pool->num_threads() : 1;
  const size_t tasks = std::max<size_t>(1, std::min(threads, n / std::max<size_t>(min_rows_per_task, 1)));
  if (tasks == 1) {
    fn(size_t{0}, n);
    return;
  }
  auto body = [&](size_t task, size_t count) { fn(n * task / count, n * (task + 1) / count); };
  pool->parallel_for(tasks, body);
}

// acc[j] += sum of the rows' column j (row stride ld), in double and in row order, so the result
// does not depend on how the rows arrive in chunks. One thread: the rows were written by all of
// them, and a second one spent more on reading lines from the other core than it saved (C3: 0.33
// ms on one thread, 0.5-0.7 on two).
inline void AddColumnSums(const float* rows, size_t nrows, size_t ncols, size_t ld, double* acc) {
  for (size_t r = 0; r < nrows; ++r) {
    const float* row = rows + r * ld;
    for (size_t j = 0; j < ncols; ++j) acc[j] += row[j];
  }
}

// out[j] = sum of the rows' column j, through AddColumnSums (scratch: ncols doubles).
inline void ColumnSums(const float* rows, size_t nrows, size_t ncols, double* scratch, float* out) {
  std::fill(scratch, scratch + ncols, 0.0);
  AddColumnSums(rows, nrows, ncols, ncols, scratch);
  for (size_t j = 0; j < ncols; ++j) out[j] = static_cast<float>(scratch[j]);
}

// dst[c * rows + r] = src[r * cols + c], in square blocks: the token tables (W_ih^T, 65 x 1024 for
// L1) and their gradients. A plain loop strides one side by a whole row (4 KiB apart at 1024
// columns), a cache line and often a TLB entry per element; L1's table took 0.37 ms that way.
inline void Transpose(const float* src, size_t rows, size_t cols, float* dst) {
  constexpr size_t kBlock = 16;
  for (size_t r0 = 0; r0 < rows; r0 += kBlock) {
    const size_t r1 = std::min(rows, r0 + kBlock);
    for (size_t c0 = 0; c0 < cols; c0 += kBlock) {
      const size_t c1 = std::min(cols, c0 + kBlock);
      for (size_t c = c0; c < c1; ++c)
        for (size_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
    }
  }
}

// Below this many multiply-adds a whole recurrence (all its time steps) runs on one thread.
constexpr size_t kParallelRecurrence = size_t{1} << 20;

// Runs fn(inner_pool, b0, b1) over the batch rows of a recurrence whose step costs
// row_work multiply-adds per batch row. A batch row's recurrence never reads another row's, so
// when the batch has a register tile of rows for every thread, each thread takes a contiguous
// range of whole tiles and runs every time step of it alone: no barrier per time step, and no
// state moves between cores (on this project's VM a line written by one core costs the other
// 50-650 ns to read, depending on where the host placed the two vCPUs). Smaller batches run
// whole, their products split by columns inside (inner_pool = pool), so no thread idles. The
// tiles, and so every result, are the same either way.
template <class Fn>
void ForBatchSlices(const kernels::KernelSet& ks, ThreadPool* pool, size_t steps, size_t batch, size_t row_work,
                    Fn&& fn) {
  const size_t mr = static_cast<size_t>(ks.mr);
  const size_t tiles = (batch + mr - 1) / mr;
  const size_t threads = pool ? pool->num_threads() : 1;
  if (steps * batch * row_work < kParallelRecurrence) {
    fn(static_cast<ThreadPool*>(nullptr), size_t{0}, batch);
    return;
  }
  if (threads <= 1 || tiles < threads) {
    fn(pool, size_t{0}, batch);
    return;
  }
  auto body = [&](size_t task, size_t count) {
    fn(static_cast<ThreadPool*>(nullptr), std::min(batch, tiles * task / count * mr),
       std::min(batch, tiles * (task + 1) / count * mr));
  };
  pool->parallel_for(threads, body);
}

}  // namespace bptt
