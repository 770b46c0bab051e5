// Phase timers of the layer engine, for bench/engine.js. Off unless the environment variable
// BPTT_ENGINE_PROFILE is set when the addon loads; off, a timer is one predictable branch.
// BPTT_ENGINE_PROFILE=cpu times with the calling thread's CPU clock instead of the wall clock:
// on a machine other work shares, one-thread phases then leave out the time the thread waited
// for a core (with more threads, time spent waiting for the others counts as CPU time too).
//
// On, each layer_forward / layer_backward call times its phases on the thread that made the call
// (the one that also runs a share of every parallel region) and, when it returns, writes one line
// to stderr:
//   bptt-engine-profile {"call":"forward","wall_ns":N,"project":N,"recur_gemm":N,...}
// The phases of a call's own thread add up to its wall time, less what is not timed ("other" =
// wall_ns minus the sum). Another thread's work shows as the caller's time in that region.
#pragma once

#include <cstdint>

namespace bptt {
namespace engine {
namespace profile {

enum class Phase : int {
  kProject,      // forward: input projections (bias rows, product or token gather)
  kRecurGemm,    // the per-step recurrent products, forward and backward
  kPointwise,    // the cells' forward and backward, with the rows they read and write
  kWeightGrads,  // dW_ih, dW_hh, bias sums, token scatter
  kInputGrads,   // dx (and the upstream gradient of the layer below)
  kCount
};

extern const bool g_enabled;

uint64_t NowNs();  // on the chosen clock

// Whether this thread is timing a call now, and its phase sums.
struct ThreadRecord {
  bool recording = false;
  uint64_t phase_ns[static_cast<int>(Phase::kCount)] = {};
};
ThreadRecord& ThisThread();
void Report(const char* call, uint64_t wall_ns);

// A whole layer_forward / layer_backward call on its calling thread.
class CallScope {
 public:
  explicit CallScope(const char* call) : call_(call) {
    if (!g_enabled) return;
    ThreadRecord& r = ThisThread();
    r = ThreadRecord{};
    r.recording = true;
    start_ = NowNs();
  }
  ~CallScope() {
    if (!g_enabled) return;
    const uint64_t wall = NowNs() - start_;
    ThisThread().recording = false;
    Report(call_, wall);
  }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  const char* call_;
  uint64_t start_ = 0;
};

// Adds the time until it ends to a phase, when its thread is timing a call.
class PhaseScope {
 public:
  explicit PhaseScope(Phase phase) {
    if (!g_enabled || !ThisThread().recording) return;
    phase_ = static_cast<int>(phase);
    start_ = NowNs();
  }
  ~PhaseScope() {
    if (phase_ >= 0) ThisThread().phase_ns[phase_] += NowNs() - start_;
  }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  int phase_ = -1;
  uint64_t start_ = 0;
};

}  // namespace profile
}  // namespace engine
}  // namespace bptt
