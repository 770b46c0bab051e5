#include "optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "errors.h"

namespace bptt {

int optimizer_state_slots(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd: return 0;
    case OptimizerKind::kMomentum:
    case OptimizerKind::kNesterov:
    case OptimizerKind::kAdagrad:
    case OptimizerKind::kRmsprop: return 1;
    case OptimizerKind::kAdam: return 2;
  }
  return 0;
}

bool parse_optimizer_kind(const char* name, OptimizerKind* out) {
  static const struct { const char* name; OptimizerKind kind; } kNames[] = {
      {"sgd", OptimizerKind::kSgd},         {"momentum", OptimizerKind::kMomentum},
      {"nesterov", OptimizerKind::kNesterov}, {"adagrad", OptimizerKind::kAdagrad},
      {"rmsprop", OptimizerKind::kRmsprop}, {"adam", OptimizerKind::kAdam},
  };
  for (const auto& entry : kNames) {
    if (std::strcmp(name, entry.name) == 0) {
      *out = entry.kind;
      return true;
    }
  }
  return false;
}

namespace {

[[noreturn]] void Refuse(const UpdateEntry& e) {
  throw NonFiniteGradient(std::string("the update is not finite (") + e.name +
                          " or its optimizer state would become NaN or infinite); parameters and optimizer state "
                          "were left unchanged");
}

// The kernels' coefficients for an optimizer that keeps state (not SGD).
kernels::RuleCoefficients StatefulCoefficients(const OptimizerConfig& cfg, float grad_scale) {
  kernels::RuleCoefficients c{};
  c.rule = cfg.kind == OptimizerKind::kMomentum  ? kernels::StatefulRule::kMomentum
           : cfg.kind == OptimizerKind::kNesterov ? kernels::StatefulRule::kNesterov
           : cfg.kind == OptimizerKind::kAdagrad  ? kernels::StatefulRule::kAdagrad
           : cfg.kind == OptimizerKind::kRmsprop  ? kernels::StatefulRule::kRmsprop
                                                  : kernels::StatefulRule::kAdam;
  c.lr = cfg.lr;
  c.k = grad_scale;
  c.momentum = cfg.momentum;
  c.rho = cfg.rho;
  c.beta1 = cfg.beta1;
  c.beta2 = cfg.beta2;
  c.eps = cfg.eps;
  // Bias corrections in double: beta^t underflows float precision long before t gets large.
  const double t = static_cast<double>(cfg.step);
  c.c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(cfg.beta1), t)));
  c.c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(cfg.beta2), t)));
  return c;
}

}  // namespace

void apply_optimizer_update(const kernels::KernelSet& ks, const OptimizerConfig& cfg, float grad_scale,
                            const UpdateEntry* entries, size_t count) {
  if (cfg.kind == OptimizerKind::kSgd) {
    // One pass (a checking pass would cost as much as the update: C1 +1.7 us). The old parameters
    // of every entry written so far are in their gradients' places.
    for (size_t i = 0; i < count; ++i) {
      if (!ks.scaled_add_swap(entries[i].param, entries[i].grad, -cfg.lr * grad_scale, entries[i].size)) {
        for (size_t j = 0; j <= i; ++j) std::memcpy(entries[j].param, entries[j].grad, entries[j].size * sizeof(float));
        Refuse(entries[i]);
      }
    }
    return;
  }
  // A first pass checks every new value and writes nothing; the second writes the same bits.
  const kernels::RuleCoefficients c = StatefulCoefficients(cfg, grad_scale);
  for (size_t i = 0; i < count; ++i) {
    const UpdateEntry& e = entries[i];
    if (!ks.stateful_update(c, false, e.param, e.grad, e.state[0], e.state[1], e.size)) Refuse(e);
  }
  for (size_t i = 0; i < count; ++i) {
    const UpdateEntry& e = entries[i];
    ks.stateful_update(c, true, e.param, e.grad, e.state[0], e.state[1], e.size);
  }
}

void set_optimizer_hyperparameters(const double* h, OptimizerConfig* cfg) {
  auto value = [&](size_t i, const char* name, double fallback, double lo, double hi, bool required) {
    const double d = h[i];
    if (std::isnan(d)) {
      if (required) throw std::invalid_argument(std::string(name) + " must be given");
      return fallback;
    }
    if (!(d >= lo && d <= hi)) {
      throw std::invalid_argument(std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                  std::to_string(d));
    }
    return d;
  };
  cfg->lr = static_cast<float>(value(0, "lr", 0, 0, 3.4e38, true));
  cfg->momentum = static_cast<float>(value(1, "momentum", cfg->momentum, 0, 1, false));
  cfg->beta1 = static_cast<float>(value(2, "beta1", cfg->beta1, 0, 1, false));
  cfg->beta2 = static_cast<float>(value(3, "beta2", cfg->beta2, 0, 1, false));
  cfg->rho = static_cast<float>(value(4, "rho", cfg->rho, 0, 1, false));
  cfg->eps = static_cast<float>(value(5, "eps", cfg->eps, 0, 1, false));
  const double step = value(6, "step", 1, 1, 9007199254740991.0, true);
  if (step != std::floor(step)) throw std::invalid_argument("step must be an integer, got " + std::to_string(step));
  cfg->step = static_cast<int64_t>(step);
  // The update runs in float32: Adam's bias correction 1 / (1 - beta^t) divides by zero when a
  // beta rounds to 1, and a zero gradient gives 0 / 0 when eps rounds to 0.
  if (cfg->beta1 >= 1.0f || cfg->beta2 >= 1.0f) throw std::invalid_argument("beta1 and beta2 must stay below 1 after rounding to float32");
  if (!(cfg->eps > 0.0f)) throw std::invalid_argument("eps must stay above 0 after rounding to float32");
}

TrainStepResult finish_train_step(const kernels::KernelSet& ks, double loss, const ClipConfig& clip,
                                  const OptimizerConfig& optimizer, const UpdateEntry* entries, size_t count) {
  double squares = 0;
  for (size_t i = 0; i < count; ++i) squares += ks.sum_squares(entries[i].grad, entries[i].size);
  const double norm = std::sqrt(squares);
  if (!std::isfinite(norm) || !std::isfinite(loss)) {
    throw NonFiniteGradient("the loss or gradient is not finite (loss " + std::to_string(loss) + ", gradient norm " +
                            std::to_string(norm) + "); parameters and optimizer state were left unchanged");
  }
  bool clipped = false;
  if (clip.max_value > 0) {
    const float v = clip.max_value;
    for (size_t i = 0; i < count; ++i) {
      float* g = entries[i].grad;
      for (size_t j = 0; j < entries[i].size; ++j) {
        const float y = std::min(std::max(g[j], -v), v);
        clipped |= y != g[j];
        g[j] = y;
      }
    }
  }
  float grad_scale = 1.0f;
  if (clip.max_norm > 0 && norm > clip.max_norm) {
    grad_scale = static_cast<float>(clip.max_norm / norm);
    clipped = true;
  }
  apply_optimizer_update(ks, optimizer, grad_scale, entries, count);
  return {loss, norm, clipped};
}

}  // namespace bptt
