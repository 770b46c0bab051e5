#include "profile.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace bptt {
namespace engine {
namespace profile {

namespace {

const char* Setting() { return std::getenv("BPTT_ENGINE_PROFILE"); }

const bool g_cpu_clock = Setting() != nullptr && std::strcmp(Setting(), "cpu") == 0;

}  // namespace

const bool g_enabled = Setting() != nullptr;

uint64_t NowNs() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  }
#endif
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

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
