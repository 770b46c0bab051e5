// The Elman RNN forward pass and backpropagation through time, in the formulation fast CPU RNN
// libraries use: every product that does not depend on the recurrence runs once over all T*B
// rows; only the B x H by H x H recurrent product steps through time.
//
// A large batch's gradients are computed in two shards of its rows, each running the whole step
// on its own rows (on its own core when there are two threads) into its own gradients, which are
// then added in shard order: no buffer a core writes is read by the other until that sum, and the
// shards depend on the batch alone, so every bit is the same for any thread count.
//
// Layout (row-major, time-major): inputs [T,B] token ids or [T,B,D]; states [T,B,H];
// logits [T,B,K]; U [H,D], W [H,H], b [H], V [K,H], c [K]; h0 and hT [B,H].
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "aligned_buffer.h"
#include "errors.h"
#include "gemm.h"
#include "heads.h"
#include "kernels/kernels.h"
#include "optim.h"

namespace bptt {

class ThreadPool;

struct RnnShape {
  size_t input;   // D
  size_t hidden;  // H
  size_t output;  // K
  size_t steps;   // T
  size_t batch;   // B
};

struct RnnParams {
  const float* U;
  const float* W;
  const float* b;
  const float* V;
  const float* c;
};

struct RnnGrads {
  float* U;
  float* W;
  float* b;
  float* V;
  float* c;
  float* h0;  // may be null when the caller does not want dL/dh0
};

// Exactly one of tokens / dense is set. targets may be null for forward-only calls; a target
// of -1 is ignored. h0 null means zeros.
struct RnnBatch {
  const int32_t* tokens;
  const float* dense;
  const int32_t* targets;
  const float* h0;
  // Rows per step in dense (as engine::LayerInput's): a shard of a larger batch reads its rows of
  // the whole batch's inputs in place with it (dense then points at its first row). 0: batch.
  size_t input_batch_stride = 0;
};

// Where a call copies the states it computes besides hT: s_step ([B,H]) into dst, when dst is
// set. TBPTT(k1, k2) windows overlap, and the next window starts from this state.
struct StateCapture {
  float* dst = nullptr;
  size_t step = 0;
};

// Everything one call needs besides its inputs and outputs, kept between calls so steady-state
// training allocates nothing. One workspace serves one call at a time.
struct RnnWorkspace {
  AlignedBuffer states, logits, state_grads, lag_grads, pre_grads, gathered, row_loss, col_sums, bias_sums, first_pre;
  AlignedBuffer grads[5];
  AlignedBuffer tokens, targets;  // a batch shard's own rows of the batch's token ids and targets
  PackedB recurrent_fwd;  // W^T, for s_{t-1} W^T
  PackedB recurrent_bwd;  // W, for dpre_{t+1} W
  std::vector<RnnWorkspace> shards;  // one per batch shard of a large batch's gradients
};

void rnn_forward(const kernels::KernelSet& ks, ThreadPool* pool, const RnnShape& shape,
                 const RnnParams& params, const RnnBatch& batch, RnnWorkspace& ws, float* states,
                 float* logits, float* hT);

// truncate == 0 or >= steps: full BPTT. Otherwise each loss term L_t backpropagates through
// s_t .. s_{t-truncate+1} only.
LossResult rnn_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool,
                                  const RnnShape& shape, const RnnParams& params,
                                  const RnnBatch& batch, size_t truncate, Reduction reduction,
                                  RnnWorkspace& ws, const RnnGrads& grads, float* hT,
                                  const StateCapture& capture = {});

struct MutableParams {
  float* U;
  float* W;
  float* b;
  float* V;
  float* c;
};

// Forward, BPTT, clipping and the optimizer update in one call. optimizer_state[i] holds the
// state slots of parameter i (U, W, b, V, c order). Throws NonFiniteGradient, leaving the
// parameters and the optimizer state untouched, when the loss, the gradient or the update is not
// finite.
TrainStepResult rnn_train_step(const kernels::KernelSet& ks, ThreadPool* pool,
                               const RnnShape& shape, const MutableParams& params,
                               const RnnBatch& batch, size_t truncate, Reduction reduction,
                               const ClipConfig& clip, const OptimizerConfig& optimizer,
                               float* const (&optimizer_state)[5][2], RnnWorkspace& ws,
                               float* hT, const StateCapture& capture = {});

}  // namespace bptt
