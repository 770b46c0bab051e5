#include "optim.h"

#include <cmath>
#include <cstring>

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

void optimizer_update(const kernels::KernelSet& ks, const OptimizerConfig& cfg, float* p, const float* g,
                      float grad_scale, float* s1, float* s2, size_t n) {
  const float lr = cfg.lr, k = grad_scale;
  switch (cfg.kind) {
    case OptimizerKind::kSgd:
      ks.scaled_add(p, g, -lr * k, n);
      break;
    case OptimizerKind::kMomentum:
      for (size_t i = 0; i < n; ++i) {
        s1[i] = cfg.momentum * s1[i] + k * g[i];
        p[i] -= lr * s1[i];
      }
      break;
    case OptimizerKind::kNesterov:
      for (size_t i = 0; i < n; ++i) {
        const float gi = k * g[i];
        s1[i] = cfg.momentum * s1[i] + gi;
        p[i] -= lr * (gi + cfg.momentum * s1[i]);
      }
      break;
    case OptimizerKind::kAdagrad:
      for (size_t i = 0; i < n; ++i) {
        const float gi = k * g[i];
        s1[i] += gi * gi;
        p[i] -= lr * gi / (std::sqrt(s1[i]) + cfg.eps);
      }
      break;
    case OptimizerKind::kRmsprop:
      for (size_t i = 0; i < n; ++i) {
        const float gi = k * g[i];
        s1[i] = cfg.rho * s1[i] + (1.0f - cfg.rho) * gi * gi;
        p[i] -= lr * gi / (std::sqrt(s1[i]) + cfg.eps);
      }
      break;
    case OptimizerKind::kAdam: {
      // Bias corrections in double: beta^t underflows float precision long before t gets large.
      const double t = static_cast<double>(cfg.step);
      const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(cfg.beta1), t)));
      const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(cfg.beta2), t)));
      for (size_t i = 0; i < n; ++i) {
        const float gi = k * g[i];
        s1[i] = cfg.beta1 * s1[i] + (1.0f - cfg.beta1) * gi;
        s2[i] = cfg.beta2 * s2[i] + (1.0f - cfg.beta2) * gi * gi;
        p[i] -= lr * (s1[i] * c1) / (std::sqrt(s2[i] * c2) + cfg.eps);
      }
      break;
    }
  }
}

}  // namespace bptt
