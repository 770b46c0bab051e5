// Benchmark probes. _fmaPeak measures the machine's fused multiply-add peak, the ceiling that
// bench/run.js states its GFLOP/s against ("% of peak"), measured in the same run rather than
// taken from a datasheet: clocks under load, SMT and VM throttling all move it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "bindings.h"
#include "napi_guard.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BPTT_BENCH_X86 1
#endif

namespace bptt {
namespace {

using Clock = std::chrono::steady_clock;

// Each probe runs chunks of kChunk iterations of kChains independent FMA chains until `deadline`,
// and returns the number of FMA instructions issued plus a checksum of the accumulators. The
// checksum is the loop's result, so the compiler cannot drop it. kChains = 12 covers the
// latency x throughput product of current cores (Zen 4: 4-cycle latency x 2 pipes = 8 ymm chains;
// Intel: 4 x 2 = 8), with room to spare.
constexpr int kChains = 12;
constexpr std::int64_t kChunk = 1 << 14;  // ~0.1 ms between clock reads: clock cost stays < 0.1 %

struct ProbeResult {
  std::int64_t fmas = 0;  // vector FMA instructions issued
  int lanes = 1;          // float32 lanes per instruction
  double checksum = 0;
};

// acc <- acc * a + b with a = 1 - 2^-20, b = 2^-20 converges to 1: no overflow, no denormals
// (denormal operands would slow the loop down on some cores), for any run length.
constexpr float kA = 1.0f - 1.0f / (1 << 20);
constexpr float kB = 1.0f / (1 << 20);

#ifdef BPTT_BENCH_X86
__attribute__((target("avx512f"))) ProbeResult ProbeAvx512(Clock::time_point deadline, float a_in, float b_in) {
  const __m512 a = _mm512_set1_ps(a_in), b = _mm512_set1_ps(b_in);
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  ProbeResult r;
  r.lanes = 16;
  do {
    for (std::int64_t it = 0; it < kChunk; ++it) {
      for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    r.fmas += kChunk * kChains;
  } while (Clock::now() < deadline);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  // Summed through memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its own header.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  for (float v : lanes) r.checksum += v;
  return r;
}

__attribute__((target("avx2,fma"))) ProbeResult ProbeAvx2(Clock::time_point deadline, float a_in, float b_in) {
  const __m256 a = _mm256_set1_ps(a_in), b = _mm256_set1_ps(b_in);
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  ProbeResult r;
  r.lanes = 8;
  do {
    for (std::int64_t it = 0; it < kChunk; ++it) {
      for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    r.fmas += kChunk * kChains;
  } while (Clock::now() < deadline);
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  for (float v : lanes) r.checksum += v;
  return r;
}
#endif

// Portable fallback: one multiply-add per chain per iteration, counted as 2 flops like an FMA.
// Written as a * b + c, not std::fma, which is a slow library call on x86 without -mfma; where
// the target has FMA the compiler contracts it into one.
ProbeResult ProbeScalar(Clock::time_point deadline, float a, float b) {
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = static_cast<float>(i);
  ProbeResult r;
  do {
    for (std::int64_t it = 0; it < kChunk; ++it) {
      for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * a + b;
    }
    r.fmas += kChunk * kChains;
  } while (Clock::now() < deadline);
  for (float v : acc) r.checksum += v;
  return r;
}

using Probe = ProbeResult (*)(Clock::time_point, float, float);

// The widest FMA loop this CPU runs (checked at run time: the build targets a baseline x86-64).
Probe BestProbe() {
#ifdef BPTT_BENCH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return ProbeAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ProbeAvx2;
#endif
  return ProbeScalar;
}

// _fmaPeak(milliseconds, threads) -> GFLOP/s summed over `threads` std::threads running the FMA
// loop at the same time for about `milliseconds`.
Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "_fmaPeak(milliseconds, threads) expects two numbers");
  }
  const double ms = info[0].As<Napi::Number>().DoubleValue();
  const double threads_d = info[1].As<Napi::Number>().DoubleValue();
  if (!(ms > 0) || !std::isfinite(ms) || ms > 60000) {
    throw Napi::RangeError::New(env, "_fmaPeak: milliseconds must be in (0, 60000], got " + info[0].ToString().Utf8Value());
  }
  if (!(threads_d >= 1 && threads_d <= 64) || threads_d != std::floor(threads_d)) {
    throw Napi::RangeError::New(env, "_fmaPeak: threads must be an integer in [1, 64], got " + info[1].ToString().Utf8Value());
  }
  const int threads = static_cast<int>(threads_d);
  const Probe probe = BestProbe();

  // The threads wait on `go` so that they all start together after the (slow) thread creation;
  // the deadline is set only then, and the elapsed time runs until the last one finishes.
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point deadline;
  std::vector<ProbeResult> results(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  try {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        ready.fetch_add(1, std::memory_order_acq_rel);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        results[t] = probe(deadline, kA, kB);
      });
    }
  } catch (...) {
    // A thread that cannot start: let the started ones run out (a deadline already past) and
    // join them, since destroying a running std::thread aborts the process.
    deadline = Clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : pool) th.join();
    throw;
  }
  while (ready.load(std::memory_order_acquire) < threads) std::this_thread::yield();
  const Clock::time_point start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  double flops = 0, checksum = 0;
  for (const ProbeResult& r : results) {
    flops += 2.0 * r.lanes * static_cast<double>(r.fmas);
    checksum += r.checksum;
  }
  // Every accumulator converges to 1; anything non-finite means the loop did not run as written.
  if (!std::isfinite(checksum)) throw Napi::Error::New(env, "_fmaPeak: the FMA loop produced a non-finite checksum");
  return Napi::Number::New(env, flops / seconds / 1e9);
}

// _coreRoundTrip(roundTrips) -> nanoseconds for one cache line to go from this thread to another
// running thread and back (the median of 9 runs of `roundTrips` exchanges through one atomic).
// Every multi-threaded step hands data between cores; on a VM the host decides whether the two
// vCPUs share a cache (tens of ns) or sit on different dies (hundreds), and the 2-thread results
// move with it, so the bench reports this next to them.
Napi::Value CoreRoundTrip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double n_d = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(n_d >= 1 && n_d <= 1e7) || n_d != std::floor(n_d)) {
    throw Napi::RangeError::New(env, "_coreRoundTrip(roundTrips) expects an integer in [1, 1e7]");
  }
  const std::int64_t n = static_cast<std::int64_t>(n_d);
  constexpr int kRuns = 9;
  alignas(64) std::atomic<std::int64_t> line{0};
  std::vector<double> ns;
  ns.reserve(kRuns);  // nothing below may throw while the partner thread runs
  std::thread partner([&] {
    for (std::int64_t i = 0; i < kRuns * n; ++i) {
      for (int spins = 1; line.load(std::memory_order_acquire) != 2 * i + 1; ++spins) {
        if (spins % 4096 == 0) std::this_thread::yield();  // a single CPU: let the other side run
      }
      line.store(2 * i + 2, std::memory_order_release);
    }
  });
  for (int run = 0; run < kRuns; ++run) {
    const Clock::time_point start = Clock::now();
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t i = run * n + j;
      line.store(2 * i + 1, std::memory_order_release);
      for (int spins = 1; line.load(std::memory_order_acquire) != 2 * i + 2; ++spins) {
        if (spins % 4096 == 0) std::this_thread::yield();
      }
    }
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / static_cast<double>(n));
  }
  partner.join();
  std::sort(ns.begin(), ns.end());
  return Napi::Number::New(env, ns[kRuns / 2]);
}

}  // namespace

void InitBenchBindings(Napi::Env env, Napi::Object exports) {
  ExportGuarded<FmaPeak>(env, exports, "_fmaPeak");
  ExportGuarded<CoreRoundTrip>(env, exports, "_coreRoundTrip");
}

}  // namespace bptt
