#include "rnn.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "parallel.h"
#include "shards.h"
#include "thread_pool.h"

namespace bptt {

namespace {

// dpre = ds * (1 - s^2): tanh' taken from the stored states.
void TanhBackward(float* ds, const float* s, size_t n) {
  for (size_t i = 0; i < n; ++i) ds[i] *= 1.0f - s[i] * s[i];
}

// The dense input rows of steps t0 on, in place (a batch shard's rows are grouped by step).
MatrixRef DenseRows(const RnnShape& shape, const RnnBatch& batch, size_t t0) {
  const size_t D = shape.input, B = shape.batch;
  const size_t stride = batch.input_batch_stride == 0 ? B : batch.input_batch_stride;
  if (stride == B) return Plain(batch.dense + t0 * B * D, D);
  return {batch.dense + t0 * stride * D, D, Trans::kNo, B, stride * D};
}

// Input projection for all T*B rows at once: states[r] = U x_r + b, where a token input is a
// row gather from U^T and a dense input one product over all rows.
void ProjectInputs(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                   const RnnParams& params, const RnnBatch& batch, RnnWorkspace& ws, float* states) {
  const size_t D = shape.input, H = shape.hidden, rows = shape.steps * shape.batch;
  if (batch.tokens != nullptr && rows < D) {
    // Fewer rows than vocabulary entries: reading U's columns in place beats transposing U.
    for (size_t r = 0; r < rows; ++r) {
      const float* column = params.U + batch.tokens[r];
      float* out = states + r * H;
      for (size_t h = 0; h < H; ++h) out[h] = column[h * D] + params.b[h];
    }
  } else if (batch.tokens != nullptr) {
    float* ut = ws.gathered.floats(D * H);
    Transpose(params.U, H, D, ut);
    ForRows(pool, rows, 256, [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        const float* column = ut + static_cast<size_t>(batch.tokens[r]) * H;
        float* out = states + r * H;
        for (size_t h = 0; h < H; ++h) out[h] = column[h] + params.b[h];
      }
    });
  } else {
    gemm(ks, pool, rows, H, D, DenseRows(shape, batch, 0), Transposed(params.U, D), states, H, false,
         Epilogue::Bias(params.b));
  }
}

// The recurrence s_t = tanh(P_t + s_{t-1} W^T), with P_t already in states (bias included) and
// W^T packed once for all time steps (recurrent); tanh is fused into the product's epilogue.
void Recur(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape, const PackedB& recurrent,
           const float* h0, float* states) {
  const size_t H = shape.hidden, B = shape.batch, block = B * H;
  ForBatchSlices(ks, pool, shape.steps, shape.batch, shape.hidden * shape.hidden, [&](ThreadPool* inner, size_t b0, size_t b1) {
    for (size_t t = 0; t < shape.steps; ++t) {
      float* st = states + t * block + b0 * H;
      const float* prev = t > 0 ? st - block : (h0 != nullptr ? h0 + b0 * H : nullptr);
      if (prev == nullptr) {
        ks.tanh_inplace(st, (b1 - b0) * H);
      } else {
        gemm_packed(ks, inner, b1 - b0, Plain(prev, H), recurrent, st, H, true, Epilogue::Tanh());
      }
    }
  });
}

void ComputeLogits(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                   const RnnParams& params, const float* states, float* logits) {
  const size_t H = shape.hidden, K = shape.output, rows = shape.steps * shape.batch;
  gemm(ks, pool, rows, K, H, Plain(states, H), Transposed(params.V, H), logits, K, false, Epilogue::Bias(params.c));
}

// The packed forms of W every time step multiplies by.
struct PackedRecurrent {
  const PackedB& forward;   // W^T, for s_{t-1} W^T
  const PackedB& backward;  // W, for dpre_{t+1} W
};

void ForwardInto(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                 const RnnParams& params, const RnnBatch& batch, const PackedB& recurrent, RnnWorkspace& ws,
                 float* states, float* logits) {
  ProjectInputs(ks, pool, shape, params, batch, ws, states);
  Recur(ks, pool, shape, recurrent, batch.h0, states);
  ComputeLogits(ks, pool, shape, params, states, logits);
}

// What the input-side gradients need while BPTT produces dpre in time chunks: dW, db and dU
// accumulate chunk by chunk, so no buffer of T*B*H gradients is ever held at once.
struct InputSideGrads {
  const RnnShape& shape;
  const RnnBatch& batch;
  const float* states;
  const RnnGrads& grads;
  double* bias_sums;  // H, db accumulated in double
  float* token_grads;  // D x H dU^T for token inputs with many rows, else null
};

// Adds the contributions of dpre for steps [t0, t1) (rows pre, (t1-t0)*B of them) to dW, db and
// dU; `first` overwrites instead (the first chunk seen).
void AccumulateInputSide(const kernels::KernelSet& ks, ThreadPool* pool, const InputSideGrads& g,
                         size_t t0, size_t t1, const float* pre, bool first) {
  const size_t D = g.shape.input, H = g.shape.hidden, B = g.shape.batch, block = B * H;
  const size_t rows = (t1 - t0) * B;
  // dW += dpre_t^T s_{t-1}; step 0 pairs with h0 (zero when absent).
  const size_t skip = t0 == 0 ? 1 : 0;
  gemm(ks, pool, H, H, rows - skip * B, Transposed(pre + skip * block, H), Plain(g.states + (t0 + skip - 1) * block, H),
       g.grads.W, H, !first);
  if (t0 == 0 && g.batch.h0 != nullptr) {
    gemm(ks, pool, H, H, B, Transposed(pre, H), Plain(g.batch.h0, H), g.grads.W, H, true);
  }
  AddColumnSums(pre, rows, H, H, g.bias_sums);
  if (g.batch.dense != nullptr) {
    gemm(ks, pool, H, D, rows, Transposed(pre, H), DenseRows(g.shape, g.batch, t0), g.grads.U, D, !first);
    return;
  }
  // Token inputs: dU[:, token] += dpre row. With fewer rows than vocabulary entries straight into
  // dU's columns (see ProjectInputs); otherwise into rows of dU^T, transposed once at the end.
  const int32_t* tokens = g.batch.tokens + t0 * B;
  if (g.token_grads == nullptr) {
    if (first) std::memset(g.grads.U, 0, D * H * sizeof(float));
    for (size_t r = 0; r < rows; ++r) {
      float* column = g.grads.U + tokens[r];
      const float* src = pre + r * H;
      for (size_t h = 0; h < H; ++h) column[h * D] += src[h];
    }
  } else {
    if (first) std::memset(g.token_grads, 0, D * H * sizeof(float));
    for (size_t r = 0; r < rows; ++r) {
      float* dst = g.token_grads + static_cast<size_t>(tokens[r]) * H;
      const float* src = pre + r * H;
      for (size_t h = 0; h < H; ++h) dst[h] += src[h];
    }
  }
}

// Rows of output-layer gradient e = dz V per chunk of BPTT: enough for efficient products, few
// enough that the chunk buffer stays a small fraction of the states. A batch's shards share them.
constexpr size_t kChunkRows = 1024;

// Steps per chunk when a chunk may hold `rows` rows (kChunkRows, shared by a batch's shards).
size_t ChunkSteps(const RnnShape& shape, size_t rows) {
  return std::max<size_t>(1, std::min(shape.steps, rows / shape.batch));
}

// Full BPTT: ds_t = e_t + dpre_{t+1} W, dpre_t = ds_t * (1 - s_t^2), stepping back through time
// in chunks of steps. Each chunk computes its e rows, runs the recurrence back through them, and
// hands its dpre rows to the input-side gradients. Returns nothing; dpre_0 is left in `first_pre`
// (B x H) for dL/dh0.
void BackwardFull(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape, const RnnParams& params,
                  const PackedB& recurrent, size_t chunk_steps, const float* states, const float* dz,
                  RnnWorkspace& ws, const InputSideGrads& input_side, float* first_pre) {
  const size_t H = shape.hidden, K = shape.output, B = shape.batch, T = shape.steps, block = B * H;
  // One block past the chunk holds dpre of the step after it (from the previous chunk).
  float* chunk = ws.state_grads.floats((chunk_steps + 1) * block);
  bool first = true;
  for (size_t t1 = T; t1 > 0;) {
    const size_t t0 = t1 > chunk_steps ? t1 - chunk_steps : 0;
    const size_t steps = t1 - t0;
    if (!first) std::memcpy(chunk + steps * block, chunk, block * sizeof(float));
    gemm(ks, pool, steps * B, H, K, Plain(dz + t0 * B * K, K), Plain(params.V, H), chunk, H, false);
    ForBatchSlices(ks, pool, shape.steps, shape.batch, shape.hidden * shape.hidden, [&](ThreadPool* inner, size_t b0, size_t b1) {
      for (size_t t = t1; t-- > t0;) {
        float* dt = chunk + (t - t0) * block + b0 * H;
        const float* s = states + t * block + b0 * H;
        if (t + 1 < T) {
          gemm_packed(ks, inner, b1 - b0, Plain(dt + block, H), recurrent, dt, H, true,
                      Epilogue::TanhGradient(s));
        } else {
          TanhBackward(dt, s, (b1 - b0) * H);
        }
      }
    });
    AccumulateInputSide(ks, pool, input_side, t0, t1, chunk, first);
    first = false;
    t1 = t0;
  }
  std::memcpy(first_pre, chunk, block * sizeof(float));
}

// Truncated BPTT: L_t reaches back through s_t .. s_{t-k+1}. The loss terms are taken in chunks
// of time steps [t0, t1), latest first; within a chunk the contributions of every L_t travel back
// together lag by lag (after m steps, row t of `lag` holds dL_t/ds_{t-m}), so each lag is one
// product over the chunk's rows. They land on dpre rows [t0 - k + 1, t1): rows from t0 on are then
// complete (earlier loss terms never reach them) and go to the input-side gradients, and the k - 1
// rows before t0 carry over to the next chunk. The buffers hold two chunks and a chunk plus k - 1
// steps of rows, not T. Returns nothing; dpre_0 is left in `first_pre` (B x H).
void BackwardTruncated(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape, size_t k,
                       const RnnParams& params, const PackedB& recurrent, size_t chunk_steps, const float* states,
                       const float* dz, RnnWorkspace& ws, const InputSideGrads& input_side, float* first_pre) {
  const size_t H = shape.hidden, K = shape.output, B = shape.batch, T = shape.steps, block = B * H;
  float* lag = ws.state_grads.floats(chunk_steps * block);
  float* next = ws.lag_grads.floats(chunk_steps * block);
  // dpre of steps [w0, t1): window row j is step w0 + j.
  float* window = ws.pre_grads.floats((chunk_steps + k - 1) * block);
  size_t carried = 0;  // rows at the window's end that hold partial sums from later chunks
  bool first = true;
  for (size_t t1 = T; t1 > 0;) {
    const size_t t0 = t1 > chunk_steps ? t1 - chunk_steps : 0;
    const size_t w0 = t0 >= k - 1 ? t0 - (k - 1) : 0;
    // The previous chunk's carried rows, steps [t1 - carried, t1) at its window's start, are the
    // last rows of this window; the rows before them start from zero.
    const size_t rows = t1 - w0;
    if (carried > 0) std::memmove(window + (rows - carried) * block, window, carried * block * sizeof(float));
    std::memset(window, 0, (rows - carried) * block * sizeof(float));
    gemm(ks, pool, (t1 - t0) * B, H, K, Plain(dz + t0 * B * K, K), Plain(params.V, H), lag, H, false);
    for (size_t m = 0; m < k && m < t1; ++m) {
      // Loss steps t in [max(t0, m), t1): lag row t - t0 = dL_t/ds_{t-m} -> dL_t/dpre_{t-m}.
      const size_t first_t = std::max(t0, m);
      ForRows(pool, t1 - first_t, 4, [&](size_t begin, size_t end) {
        for (size_t t = first_t + begin; t < first_t + end; ++t) {
          float* g = lag + (t - t0) * block;
          TanhBackward(g, states + (t - m) * block, block);
          float* acc = window + (t - m - w0) * block;
          for (size_t i = 0; i < block; ++i) acc[i] += g[i];
        }
      });
      if (m + 1 < k && m + 1 < t1) {
        // next row t - t0 = dL_t/ds_{t-m-1} = dL_t/dpre_{t-m} W for t in [max(t0, m + 1), t1)
        const size_t from = std::max(t0, m + 1);
        gemm_packed(ks, pool, (t1 - from) * B, Plain(lag + (from - t0) * block, H), recurrent,
                    next + (from - t0) * block, H, false);
        std::swap(lag, next);
      }
    }
    AccumulateInputSide(ks, pool, input_side, t0, t1, window + (t0 - w0) * block, first);
    first = false;
    carried = t0 - w0;
    t1 = t0;
  }
  std::memcpy(first_pre, window, block * sizeof(float));
}

// One shard's forward pass and BPTT over its rows (shape.batch of them), going back in chunks of
// at most chunk_rows rows: its gradients into grads, its final states into hT. Returns Σ w·l over
// its rows; dL/dlogits carry `scale`.
double ShardLossAndGradients(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                             const RnnParams& params, const RnnBatch& batch, size_t truncate, float scale,
                             const PackedRecurrent& recurrent, size_t chunk_rows, RnnWorkspace& ws,
                             const RnnGrads& grads, float* hT, const StateCapture& capture) {
  const size_t D = shape.input, H = shape.hidden, K = shape.output, B = shape.batch;
  const size_t T = shape.steps, rows = T * B, block = B * H;

  float* states = ws.states.floats(rows * H);
  float* logits = ws.logits.floats(rows * K);
  ForwardInto(ks, pool, shape, params, batch, recurrent.forward, ws, states, logits);
  std::memcpy(hT, states + (T - 1) * block, block * sizeof(float));
  if (capture.dst != nullptr) std::memcpy(capture.dst, states + capture.step * block, block * sizeof(float));

  // Fused output layer: softmax, cross-entropy and dL/dz for every row, z overwritten by dz.
  const double loss = softmax_cross_entropy_sum(ks, pool, logits, rows, K, batch.targets, nullptr, scale, ws.row_loss);
  const float* dz = logits;

  double* col_sums = ws.col_sums.doubles(std::max({D, H, K}));
  gemm(ks, pool, K, H, rows, Transposed(dz, K), Plain(states, H), grads.V, H, false);
  ColumnSums(dz, rows, K, col_sums, grads.c);

  double* bias_sums = ws.bias_sums.doubles(H);
  std::fill(bias_sums, bias_sums + H, 0.0);
  const bool token_rows_transposed = batch.tokens != nullptr && rows >= D;
  const InputSideGrads input_side{shape, batch, states, grads, bias_sums,
                                  token_rows_transposed ? ws.gathered.floats(D * H) : nullptr};
  float* first_pre = ws.first_pre.floats(block);
  if (truncate != 0 && truncate < T) {
    BackwardTruncated(ks, pool, shape, truncate, params, recurrent.backward, ChunkSteps(shape, chunk_rows), states, dz,
                      ws, input_side, first_pre);
  } else {
    BackwardFull(ks, pool, shape, params, recurrent.backward, ChunkSteps(shape, chunk_rows), states, dz, ws,
                 input_side, first_pre);
  }
  for (size_t h = 0; h < H; ++h) grads.b[h] = static_cast<float>(bias_sums[h]);
  if (token_rows_transposed) Transpose(input_side.token_grads, D, H, grads.U);
  if (grads.h0 != nullptr) {
    gemm_packed(ks, pool, B, Plain(first_pre, H), recurrent.backward, grads.h0, H, false);
  }
  return loss;
}

// Batches of at least kShards * kMinShardRows rows whose recurrence is worth threads run as
// batch shards (shards.h); two cost one extra set of gradients.
bool Sharded(const RnnShape& shape) {
  return shape.batch >= kShards * kMinShardRows &&
         shape.steps * shape.batch * shape.hidden * shape.hidden >= kParallelRecurrence;
}

// The batch's shards (shards.h), each run by ShardLossAndGradients on its own rows: shard 0 into
// grads, the others into their own workspace's gradients, then added to grads in shard order.
// Measured with the host's vCPUs apart, a 2-thread C2 step took 3.8-3.9 ms with every phase split
// across both cores and 2.4-2.6 ms as shards.
double ShardedLossAndGradients(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                               const RnnParams& params, const RnnBatch& batch, size_t truncate, float scale,
                               const PackedRecurrent& recurrent, RnnWorkspace& ws, const RnnGrads& grads,
                               float* hT, const StateCapture& capture) {
  const size_t D = shape.input, H = shape.hidden, K = shape.output, B = shape.batch, T = shape.steps;
  const size_t sizes[5] = {H * D, H * H, H, K * H, K};
  if (ws.shards.size() != kShards) ws.shards.resize(kShards);
  double losses[kShards];
  RunShards(pool, [&](ThreadPool* inner, size_t s) {
    const ShardRows rows = ShardOf(ks, B, s);
    const size_t b0 = rows.first;
    RnnWorkspace& sw = ws.shards[s];
    RnnShape sub = shape;
    sub.batch = rows.count;
    // Token ids and targets are copied (an int per row); dense inputs are read in place.
    auto own_rows = [&](const int32_t* all, AlignedBuffer& buffer) -> const int32_t* {
      if (all == nullptr) return nullptr;
      int32_t* mine = buffer.as<int32_t>(T * rows.count);
      GatherRows(mine, all, T, B, rows, 1);
      return mine;
    };
    RnnBatch part{own_rows(batch.tokens, sw.tokens), batch.dense ? batch.dense + b0 * D : nullptr,
                  own_rows(batch.targets, sw.targets), batch.h0 ? batch.h0 + b0 * H : nullptr};
    part.input_batch_stride = B;
    float* g[5] = {grads.U, grads.W, grads.b, grads.V, grads.c};
    if (s > 0)
      for (int i = 0; i < 5; ++i) g[i] = sw.grads[i].floats(sizes[i]);
    const RnnGrads part_grads{g[0], g[1], g[2], g[3], g[4], grads.h0 ? grads.h0 + b0 * H : nullptr};
    const StateCapture part_capture{capture.dst ? capture.dst + b0 * H : nullptr, capture.step};
    losses[s] = ShardLossAndGradients(ks, inner, sub, params, part, truncate, scale, recurrent, kChunkRows / kShards,
                                      sw, part_grads, hT + b0 * H, part_capture);
  });
  float* total[5] = {grads.U, grads.W, grads.b, grads.V, grads.c};
  for (int i = 0; i < 5; ++i) AddShardParts(pool, total[i], sizes[i], [&](size_t s) { return ws.shards[s].grads[i].get<float>(); });
  double loss = 0;
  for (size_t s = 0; s < kShards; ++s) loss += losses[s];
  return loss;
}

}  // namespace

void rnn_forward(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                 const RnnParams& params, const RnnBatch& batch, RnnWorkspace& ws, float* states,
                 float* logits, float* hT) {
  const size_t H = shape.hidden, block = shape.batch * H;
  ws.recurrent_fwd.pack(ks, H, H, Transposed(params.W, H));
  ForwardInto(ks, pool, shape, params, batch, ws.recurrent_fwd, ws, states, logits);
  std::memcpy(hT, states + (shape.steps - 1) * block, block * sizeof(float));
}

LossResult rnn_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool,
                                  const RnnShape& shape, const RnnParams& params,
                                  const RnnBatch& batch, size_t truncate, Reduction reduction,
                                  RnnWorkspace& ws, const RnnGrads& grads, float* hT,
                                  const StateCapture& capture) {
  const size_t H = shape.hidden;
  const TargetTotals totals = count_targets(batch.targets, shape.steps * shape.batch, nullptr);
  const float scale = static_cast<float>(totals.scale(reduction, true));
  ws.recurrent_fwd.pack(ks, H, H, Transposed(params.W, H));
  ws.recurrent_bwd.pack(ks, H, H, Plain(params.W, H));
  const PackedRecurrent recurrent{ws.recurrent_fwd, ws.recurrent_bwd};
  const double loss =
      Sharded(shape)
          ? ShardedLossAndGradients(ks, pool, shape, params, batch, truncate, scale, recurrent, ws, grads, hT, capture)
          : ShardLossAndGradients(ks, pool, shape, params, batch, truncate, scale, recurrent, kChunkRows, ws, grads, hT,
                                  capture);
  return totals.reduce(loss, reduction);
}

TrainStepResult rnn_train_step(const kernels::KernelSet& ks, ThreadPool* pool,
                               const RnnShape& shape, const MutableParams& params,
                               const RnnBatch& batch, size_t truncate, Reduction reduction,
                               const ClipConfig& clip, const OptimizerConfig& optimizer,
                               float* const (&optimizer_state)[5][2], RnnWorkspace& ws,
                               float* hT, const StateCapture& capture) {
  const size_t D = shape.input, H = shape.hidden, K = shape.output;
  const size_t sizes[5] = {H * D, H * H, H, K * H, K};
  float* g[5];
  for (int i = 0; i < 5; ++i) g[i] = ws.grads[i].floats(sizes[i]);
  const RnnParams read_only{params.U, params.W, params.b, params.V, params.c};
  const LossResult result = rnn_loss_and_gradients(ks, pool, shape, read_only, batch, truncate, reduction,
                                                   ws, RnnGrads{g[0], g[1], g[2], g[3], g[4], nullptr}, hT, capture);

  float* p[5] = {params.U, params.W, params.b, params.V, params.c};
  static const char* const kNames[5] = {"U", "W", "b", "V", "c"};
  UpdateEntry entries[5];
  for (int i = 0; i < 5; ++i) {
    entries[i] = {kNames[i], p[i], g[i], {optimizer_state[i][0], optimizer_state[i][1]}, sizes[i]};
  }
  return finish_train_step(ks, result.loss, clip, optimizer, entries, 5);
}

}  // namespace bptt
