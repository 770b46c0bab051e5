#include "optim.h"

#include <cmath>
#include <cstring>
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

}  // namespace bptt
