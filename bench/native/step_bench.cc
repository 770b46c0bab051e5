// The training step of bench/run.js without Node: forward + full BPTT + global-norm clip + SGD on
// the issue-3 workloads, timed in C++. It separates the kernels' time from the cost of the call
// from JS (argument checks, the hT tensor), and runs in seconds between commits.
//
//   npm run bench:native -- [C1|C2|C3 ...] [--threads N] [--isa NAME] [--steps N]
//
// Prints the median time per step over --steps steps (after a few warm-up steps) and GFLOP/s on
// the dense count. Data are random but fixed (seeded), parameters uniform in +-1/sqrt(H).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu.h"
#include "rnn.h"
#include "thread_pool.h"

namespace {

struct Workload {
  const char* name;
  bptt::RnnShape shape;  // input, hidden, output, steps, batch
  bool tokens;
};

const Workload kWorkloads[] = {
    {"C1", {65, 100, 65, 25, 1}, true},
    {"C2", {65, 256, 65, 64, 32}, true},
    {"C3", {256, 512, 256, 100, 64}, false},
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr, "%s\nusage: bptt_step_bench [C1|C2|C3 ...] [--threads N] [--isa scalar|avx2|avx512|auto] [--steps N]\n", why);
  std::exit(2);
}

double MedianStepSeconds(const bptt::kernels::KernelSet& ks, const Workload& w, int steps) {
  const bptt::RnnShape& s = w.shape;
  const size_t D = s.input, H = s.hidden, K = s.output, T = s.steps, B = s.batch;
  std::mt19937 rng(20261124);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const float bound = 1.0f / std::sqrt(static_cast<float>(H));
  auto fill = [&](std::vector<float>& v, float scale) {
    for (float& x : v) x = scale * uniform(rng);
  };
  std::vector<float> U(H * D), W(H * H), b(H), V(K * H), c(K), dense(w.tokens ? 0 : T * B * D), hT(B * H);
  fill(U, bound), fill(W, bound), fill(b, bound), fill(V, bound), fill(c, bound), fill(dense, 1.0f);
  std::vector<int32_t> tokens(T * B), targets(T * B);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % D);
  for (auto& t : targets) t = static_cast<int32_t>(rng() % K);

  const bptt::RnnBatch batch{w.tokens ? tokens.data() : nullptr, w.tokens ? nullptr : dense.data(), targets.data(), nullptr};
  const bptt::MutableParams params{U.data(), W.data(), b.data(), V.data(), c.data()};
  bptt::OptimizerConfig sgd;
  sgd.lr = 0.01f;
  bptt::ClipConfig clip;
  clip.max_norm = 5;
  float* const no_state[5][2] = {};
  bptt::RnnWorkspace ws;
  bptt::ThreadPool* pool = &bptt::ThreadPool::global();

  std::vector<double> seconds;
  for (int i = -3; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    bptt::rnn_train_step(ks, pool, s, params, batch, 0, bptt::Reduction::kMean, clip, sgd, no_state, ws, hT.data());
    if (i >= 0) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<const Workload*> chosen;
  int steps = 0;
  std::string isa = "auto";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value after " + arg).c_str());
      return argv[++i];
    };
    if (arg == "--threads") {
      const int n = std::atoi(value().c_str());
      if (n < 1) Usage("--threads needs a positive integer");
      bptt::ThreadPool::global().set_num_threads(static_cast<size_t>(n));
    } else if (arg == "--isa") {
      isa = value();
    } else if (arg == "--steps") {
      steps = std::atoi(value().c_str());
      if (steps < 1) Usage("--steps needs a positive integer");
    } else {
      const Workload* found = nullptr;
      for (const Workload& w : kWorkloads)
        if (arg == w.name) found = &w;
      if (found == nullptr) Usage(("unknown argument " + arg).c_str());
      chosen.push_back(found);
    }
  }
  std::string error;
  const bptt::kernels::KernelSet* ks = bptt::find_kernels(isa, &error);
  if (ks == nullptr) Usage(error.c_str());
  if (chosen.empty())
    for (const Workload& w : kWorkloads) chosen.push_back(&w);

  std::printf("isa %s, %zu thread(s)\n", ks->isa, bptt::ThreadPool::global().num_threads());
  for (const Workload* w : chosen) {
    const bptt::RnnShape& s = w->shape;
    // About a second of steps unless told: C1 ~50 us, C3 ~100-200 ms.
    const int n = steps > 0 ? steps : (s.hidden <= 128 ? 20000 : s.hidden <= 256 ? 200 : 10);
    const double t = MedianStepSeconds(*ks, *w, n);
    const double flops = 3.0 * 2.0 * s.steps * s.batch * (s.input * s.hidden + s.hidden * s.hidden + s.hidden * s.output);
    if (t < 1e-3) {
      std::printf("%s  %9.2f us per step  %7.1f GFLOP/s (dense count, median of %d)\n", w->name, t * 1e6, flops / t / 1e9, n);
    } else {
      std::printf("%s  %9.3f ms per step  %7.1f GFLOP/s (dense count, median of %d)\n", w->name, t * 1e3, flops / t / 1e9, n);
    }
  }
  return 0;
}
