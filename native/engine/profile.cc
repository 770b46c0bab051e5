#include "profile.h"

#include <cstdio>
#include <cstdlib>

namespace bptt {
namespace engine {
namespace profile {

const bool g_enabled = std::getenv("BPTT_ENGINE_PROFILE") != nullptr;

ThreadRecord& ThisThread() {
  static thread_local ThreadRecord record;
  return record;
}

void Report(const char* call, uint64_t wall_ns) {
  const uint64_t* p = ThisThread().phase_ns;
  std::fprintf(stderr,
               "bptt-engine-profile {\"call\":\"%s\",\"wall_ns\":%llu,\"project\":%llu,\"recur_gemm\":%llu,"
               "\"pointwise\":%llu,\"weight_grads\":%llu,\"input_grads\":%llu}\n",
               call, static_cast<unsigned long long>(wall_ns), static_cast<unsigned long long>(p[0]),
               static_cast<unsigned long long>(p[1]), static_cast<unsigned long long>(p[2]),
               static_cast<unsigned long long>(p[3]), static_cast<unsigned long long>(p[4]));
}

}  // namespace profile
}  // namespace engine
}  // namespace bptt
