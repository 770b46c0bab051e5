// Optimizer updates, applied in place to one parameter array with its state slots.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace bptt {

enum class OptimizerKind { kSgd, kMomentum, kNesterov, kAdagrad, kRmsprop, kAdam };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  float lr = 0.01f;
  float momentum = 0.9f;  // momentum, nesterov
  float beta1 = 0.9f;     // adam
  float beta2 = 0.999f;   // adam
  float rho = 0.9f;       // rmsprop
  float eps = 1e-8f;      // adagrad, rmsprop, adam
  int64_t step = 1;       // 1-based index of this update (adam's bias correction)
};

// How many state arrays of the parameter's size the optimizer keeps (0, 1 or 2).
int optimizer_state_slots(OptimizerKind kind);

// Parses "sgd", "momentum", ...; returns false for an unknown name.
bool parse_optimizer_kind(const char* name, OptimizerKind* out);

// p -= update(grad_scale * g); s1 / s2 are the state slots (null when the optimizer keeps
// fewer). grad_scale carries global-norm clipping, so the gradient is not rescaled in a pass of
// its own.
void optimizer_update(const kernels::KernelSet& ks, const OptimizerConfig& cfg, float* p, const float* g,
                      float grad_scale, float* s1, float* s2, size_t n);

}  // namespace bptt
