// A recurrent model: the layer engine (engine/layer.h) with a fused output head, a per-step
// softmax classifier (fc.weight [K, dirs*H], fc.bias [K]) trained with cross-entropy. Steps past a
// sequence's length are never counted, whatever their targets say.
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

struct SoftmaxHead {
  size_t classes = 0;              // K
  const float* weight = nullptr;   // [K, dirs*H]
  const float* bias = nullptr;     // [K]
};

struct HeadGrads {
  float* weight = nullptr;
  float* bias = nullptr;
};

// Scratch kept between calls; one call at a time.
struct ModelWorkspace {
  engine::LayerWorkspace layer;
  engine::ForwardRecord record;
  AlignedBuffer logits, dy, targets, row_loss, col_sums;
  std::vector<AlignedBuffer> grads;  // the training step's, one per parameter
  std::vector<std::string> names;    // of the parameters, for errors
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

// logits [T, B, K] of the model (at padding steps the head sees zero outputs: there they are fc.bias).
void model_forward(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                   const engine::LayerWeights& weights, const SoftmaxHead& head, const engine::LayerInput& input,
                   ModelWorkspace& ws, float* logits, const ModelStates& states);

// Loss and gradients of every weight (and of h0/c0 when input_grads asks), targets [T, B] with -1
// for ignored positions. Truncation as engine::layer_backward's.
LossResult model_loss_and_gradients(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                    const engine::LayerWeights& weights, const SoftmaxHead& head,
                                    const engine::LayerInput& input, const int32_t* targets, size_t truncate,
                                    Reduction reduction, ModelWorkspace& ws, const engine::LayerGrads& grads,
                                    const HeadGrads& head_grads, const engine::LayerInputGrads& input_grads,
                                    const ModelStates& states);

// The training step: loss and gradients into the workspace, then clip and update every parameter
// (the stack's in order, then fc.weight and fc.bias) through finish_train_step: all or nothing.
// state[p] holds parameter p's optimizer state slots.
TrainStepResult model_train_step(const kernels::KernelSet& ks, ThreadPool* pool, const engine::LayerSpec& spec,
                                 const std::vector<float*>& params, size_t classes, const engine::LayerInput& input,
                                 const int32_t* targets, size_t truncate, Reduction reduction, const ClipConfig& clip,
                                 const OptimizerConfig& optimizer, const std::vector<std::array<float*, 2>>& state,
                                 ModelWorkspace& ws, const ModelStates& states);

}  // namespace model
}  // namespace bptt
