// Optimizer updates, applied in place to parameter arrays and their state slots, all or nothing.
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

// Fills cfg's numbers from h = [lr, momentum, beta1, beta2, rho, eps, step] (NaN: keep cfg's
// default; lr and step are required). Throws std::invalid_argument saying what is wrong with a
// value the float32 update cannot use: out of range, a beta that rounds to 1 or an eps that rounds
// to 0 in float32.
void set_optimizer_hyperparameters(const double* h, OptimizerConfig* cfg);

// How many state arrays of the parameter's size the optimizer keeps (0, 1 or 2).
int optimizer_state_slots(OptimizerKind kind);

// Parses "sgd", "momentum", ...; returns false for an unknown name.
bool parse_optimizer_kind(const char* name, OptimizerKind* out);

// One parameter array with its gradient and the optimizer's state slots for it.
struct UpdateEntry {
  const char* name;  // for the error message
  float* param;
  float* grad;      // scratch: the update may leave other values in it
  float* state[2];  // the first optimizer_state_slots(kind) are set
  size_t size;
};

// param -= update(grad_scale * grad) for every entry, or for none: when any new parameter or state
// value would be NaN or infinite, throws NonFiniteGradient (errors.h) with every parameter and
// state array left bit-identical. grad_scale carries global-norm clipping, so the gradient is not
// rescaled in a pass of its own.
//
// SGD writes in one pass and keeps each old parameter in the gradient's place, to copy back if a
// new value is not finite. The optimizers with state (the ISA's stateful_update, kernels.h) check
// every new value in a first pass that writes nothing, then write in a second one that computes
// the same bits.
void apply_optimizer_update(const kernels::KernelSet& ks, const OptimizerConfig& cfg, float grad_scale,
                            const UpdateEntry* entries, size_t count);

struct ClipConfig {
  float max_norm = 0;   // 0: no global-norm rescaling
  float max_value = 0;  // 0: no elementwise clipping
};

struct TrainStepResult {
  double loss;
  double grad_norm;  // global L2 norm of the parameter gradients before clipping
  bool clipped;
};

// The end of every training step, given its loss and the gradients in the entries: the global
// norm, a refusal (NonFiniteGradient, nothing changed) when the loss or the norm is not finite,
// value clipping then global-norm rescaling, and the all-or-nothing update.
TrainStepResult finish_train_step(const kernels::KernelSet& ks, double loss, const ClipConfig& clip,
                                  const OptimizerConfig& optimizer, const UpdateEntry* entries, size_t count);

}  // namespace bptt
