// A recurrent model: the layer engine (engine/layer.h) with a fused output head (heads.h): a linear
// layer (fc.weight [K, dirs*H], fc.bias [K]) on the top layer's outputs at every step or pooled per
// sequence, trained with softmax cross-entropy (tokens, classify) or MSE / Huber (regress). Steps
// past a sequence's length are never counted, whatever their targets say.
#pragma once

#include <cstddef>
#include <cstdint>
#include <array>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "engine/layer.h"
#include "heads.h"
#include "optim.h"
#include "kernels/kernels.h"

namespace bptt {

class ThreadPool;

namespace model {

struct HeadWeights {
  const float* weight = nullptr;  // [K, dirs*H]
  const float* bias = nullptr;    // [K]
};

struct HeadGrads {
  float* weight = nullptr;
  float* bias = nullptr;
};

// A call's targets, by the head: class ids [rows] (-1 ignored) or values [rows, K].
struct HeadTargets {
  const int32_t* classes = nullptr;
  const float* values = nullptr;
};

// Scratch kept between calls; one call at a time.
struct ModelWorkspace {
  engine::LayerWorkspace layer;
  engine::ForwardRecord record;
  AlignedBuffer logits, features, dfeatures, dy, targets, row_loss, col_sums;
  AlignedBuffer final_h, final_c;  // hT / cT of calls that return no states
  std::vector<AlignedBuffer> grads;  // the training step's, one per parameter (a shard's partial sums)
  std::vector<std::string> names;    // of the parameters, for errors
  // A batch shard's own rows of the call's arrays, and the shards of a large batch's gradients.
  AlignedBuffer shard_h0, shard_c0, shard_classes, shard_values;
  AlignedBuffer shard_hT, shard_cT, shard_h_at, shard_c_at, shard_dh0, shard_dc0;
  std::vector<ModelWorkspace> shards;
};

// The states a call hands back: hT/cT [L*dirs, B, H] (cT LSTM only), and optionally the states
// after step `capture_step` (unidirectional models; where an overlapping TBPTT window resumes).
struct ModelStates {
  float* hT = nullptr;
  float* cT = nullptr;
  float* h_at = nullptr;
  float* c_at = nullptr;
  size_t capture_step = 0;
};

// The head's outputs of the model: logits or values [rows, K], rows = head.rows(T, B) (at padding
// steps a per-step head sees zero outputs: there its outputs are fc.bias). No dropout. Keeps
// nothing for backward (engine::LayerInput::inference) unless states.h_at asks for states.
void model_forward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                   const engine::LayerWeights& weights, const HeadSpec& head, const HeadWeights& head_weights,
                   const engine::LayerInput& input, ModelWorkspace& ws, float* outputs, const ModelStates& states);

// Loss and gradients of every weight (and of h0/c0 when input_grads asks). Truncation as
// engine::layer_backward's. A large batch (B >= 32, enough recurrent work, no dx asked) runs as
// two fixed shards of its rows, each the whole call on its own rows (side by side on 2 or 3
// threads) into its own gradients, added in shard order: as the default model's (rnn.h), bitwise
// the same for any thread count. Shards draw their rows' dropout masks of the whole batch.
LossResult model_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                    const engine::LayerWeights& weights, const HeadSpec& head,
                                    const HeadWeights& head_weights, const engine::LayerInput& input,
                                    const HeadTargets& targets, size_t truncate, Reduction reduction, ModelWorkspace& ws,
                                    const engine::LayerGrads& grads, const HeadGrads& head_grads,
                                    const engine::LayerInputGrads& input_grads, const ModelStates& states);

// The loss and its gradient dy [T, B, dirs*H] with respect to the top layer's outputs: the forward
// pass and the head's backward only (no dropout; for gradient diagnostics).
LossResult model_output_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                  const engine::LayerWeights& weights, const HeadSpec& head,
                                  const HeadWeights& head_weights, const engine::LayerInput& input,
                                  const HeadTargets& targets, Reduction reduction, ModelWorkspace& ws, float* dy);

// The training step: loss and gradients into the workspace, then clip and update every parameter
// (the stack's in order, then fc.weight and fc.bias) through finish_train_step: all or nothing.
// state[p] holds parameter p's optimizer state slots.
TrainStepResult model_train_step(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                 const HeadSpec& head, const std::vector<float*>& params, const engine::LayerInput& input,
                                 const HeadTargets& targets, size_t truncate, Reduction reduction, const ClipConfig& clip,
                                 const OptimizerConfig& optimizer, const std::vector<std::array<float*, 2>>& state,
                                 ModelWorkspace& ws, const ModelStates& states);

}  // namespace model
}  // namespace bptt
