// JS glue for ISA selection, threading, and test hooks into the kernels (prefixed with _).
#include <atomic>
#include <cmath>
#include <string>

#include "bindings.h"
#include "cpu.h"
#include "gemm.h"
#include "napi_guard.h"
#include "parallel.h"
#include "thread_pool.h"

namespace bptt {
namespace {

const kernels::KernelSet& Kernels(Napi::Env env) { return *State(env).kernels; }

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), Kernels(info.Env()).isa); }

Napi::Value SupportedIsas(const Napi::CallbackInfo& info) {
  const auto names = supported_isas();
  Napi::Array out = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "setIsa(name) expects a string");
  std::string error;
  const kernels::KernelSet* ks = find_kernels(info[0].As<Napi::String>().Utf8Value(), &error);
  if (ks == nullptr) throw Napi::RangeError::New(env, error);
  State(env).kernels = ks;  // this environment only: other threads keep their choice
  return env.Undefined();
}

size_t Count(Napi::Env env, Napi::Value v, const char* what, double lo, double hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi && d == std::floor(d))) {
    throw Napi::RangeError::New(env, std::string(what) + " must be an integer in [" + std::to_string(static_cast<long long>(lo)) +
                                         ", " + std::to_string(static_cast<long long>(hi)) + "]");
  }
  return static_cast<size_t>(d);
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  ThreadPool::global().set_num_threads(Count(info.Env(), info[0], "thread count", 1, 1024));
  return info.Env().Undefined();
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ThreadPool::global().num_threads()));
}

Napi::TypedArrayOf<float> FloatArg(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, std::string(what) + " must be a Float32Array");
  }
  return v.As<Napi::TypedArrayOf<float>>();
}

bool Flag(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, std::string(what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// Elements a rows x cols row-major matrix with row stride ld spans.
double Span(size_t rows, size_t cols, size_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * static_cast<double>(ld) + cols; }

// Elements a grouped matrix spans (MatrixRef::group; group 0: Span).
double GroupedSpan(size_t rows, size_t cols, size_t ld, size_t group, size_t group_ld) {
  if (group == 0 || rows == 0 || cols == 0) return Span(rows, cols, ld);
  const size_t last = rows - 1;
  return static_cast<double>(last / group) * static_cast<double>(group_ld) + static_cast<double>(last % group) * ld + cols;
}

// _gemm / _gemmPacked(M, N, K, A, lda, transA, B, ldb, transB, C, ldc, accumulate, tanhEpilogue
// [, aGroup, aGroupLd, bGroup, bGroupLd]): the second packs op(B) once into a PackedB and
// multiplies through gemm_packed; the optional four give A's and B's stored rows in groups.
Napi::Value GemmHook(const Napi::CallbackInfo& info, const char* name, bool prepack) {
  Napi::Env env = info.Env();
  if (info.Length() != 13 && info.Length() != 17)
    throw Napi::TypeError::New(env, std::string(name) + " expects 13 or 17 arguments");
  const double kMax = 2147483647.0;
  const size_t M = Count(env, info[0], "M", 0, kMax), N = Count(env, info[1], "N", 0, kMax), K = Count(env, info[2], "K", 0, kMax);
  auto a = FloatArg(env, info[3], "A");
  const size_t lda = Count(env, info[4], "lda", 0, kMax);
  const bool ta = Flag(env, info[5], "transA");
  auto b = FloatArg(env, info[6], "B");
  const size_t ldb = Count(env, info[7], "ldb", 0, kMax);
  const bool tb = Flag(env, info[8], "transB");
  auto c = FloatArg(env, info[9], "C");
  const size_t ldc = Count(env, info[10], "ldc", 0, kMax);
  const bool accumulate = Flag(env, info[11], "accumulate"), tanh = Flag(env, info[12], "tanhEpilogue");
  size_t a_group = 0, a_group_ld = 0, b_group = 0, b_group_ld = 0;
  if (info.Length() == 17) {
    a_group = Count(env, info[13], "aGroup", 0, kMax), a_group_ld = Count(env, info[14], "aGroupLd", 0, kMax);
    b_group = Count(env, info[15], "bGroup", 0, kMax), b_group_ld = Count(env, info[16], "bGroupLd", 0, kMax);
    if ((a_group != 0 && ta) || (b_group != 0 && tb))
      throw Napi::RangeError::New(env, std::string(name) + ": only an untransposed operand may have grouped rows");
  }
  const size_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
  if (lda < a_cols || ldb < b_cols || ldc < N) {
    throw Napi::RangeError::New(env, std::string(name) + ": a leading dimension is smaller than its row length");
  }
  if (GroupedSpan(a_rows, a_cols, lda, a_group, a_group_ld) > a.ElementLength() ||
      GroupedSpan(b_rows, b_cols, ldb, b_group, b_group_ld) > b.ElementLength() || Span(M, N, ldc) > c.ElementLength()) {
    throw Napi::RangeError::New(env, std::string(name) + ": an array is too short for its dimensions");
  }
  const kernels::KernelSet& ks = Kernels(env);
  const MatrixRef A{a.Data(), lda, ta ? Trans::kYes : Trans::kNo, a_group, a_group_ld};
  const MatrixRef B{b.Data(), ldb, tb ? Trans::kYes : Trans::kNo, b_group, b_group_ld};
  const Epilogue epilogue = tanh ? Epilogue::Tanh() : Epilogue::None();
  if (prepack) {
    PackedB packed;
    packed.pack(ks, K, N, B);
    gemm_packed(ks, &ThreadPool::global(), M, A, packed, c.Data(), ldc, accumulate, epilogue);
  } else {
    gemm(ks, &ThreadPool::global(), M, N, K, A, B, c.Data(), ldc, accumulate, epilogue);
  }
  return env.Undefined();
}

Napi::Value Gemm(const Napi::CallbackInfo& info) { return GemmHook(info, "_gemm", false); }
Napi::Value GemmPacked(const Napi::CallbackInfo& info) { return GemmHook(info, "_gemmPacked", true); }

Napi::Value TanhHook(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw Napi::TypeError::New(info.Env(), "_tanh expects one Float32Array");
  auto x = FloatArg(info.Env(), info[0], "x");
  Kernels(info.Env()).tanh_inplace(x.Data(), x.ElementLength());
  return info.Env().Undefined();
}

// _softmaxXent(z, target, scale) -> loss; z becomes dL/dz.
Napi::Value SoftmaxXentHook(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto z = FloatArg(env, info[0], "z");
  if (z.ElementLength() == 0) throw Napi::RangeError::New(env, "z must not be empty");
  if (!info[1].IsNumber() || !info[2].IsNumber()) throw Napi::TypeError::New(env, "target and scale must be numbers");
  const double target = info[1].As<Napi::Number>().DoubleValue();
  if (!(target >= -1 && target < static_cast<double>(z.ElementLength()) && target == std::floor(target))) {
    throw Napi::RangeError::New(env, "target must be -1 or an index into z");
  }
  const float scale = info[2].As<Napi::Number>().FloatValue();
  return Napi::Number::New(env, Kernels(env).softmax_xent_row(z.Data(), z.ElementLength(), static_cast<int32_t>(target), scale));
}

// _softmax(z, invTemperature): z becomes softmax(z * invTemperature).
Napi::Value SoftmaxHook(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto z = FloatArg(env, info[0], "z");
  if (z.ElementLength() == 0) throw Napi::RangeError::New(env, "z must not be empty");
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "invTemperature must be a number");
  const float inv_t = info[1].As<Napi::Number>().FloatValue();
  if (!(inv_t > 0) || !std::isfinite(inv_t)) throw Napi::RangeError::New(env, "invTemperature must be positive and finite");
  Kernels(env).softmax_row(z.Data(), z.ElementLength(), inv_t);
  return env.Undefined();
}

// softmaxRows(values, K): every row of K values becomes its softmax, in place, rows split over
// the pool. What predict returns for the classifying heads; in JS (two exp per element) it took
// longer than a third of the LSTM's forward pass it follows.
Napi::Value SoftmaxRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw Napi::TypeError::New(env, "softmaxRows(values, K) expects 2 arguments, got " + std::to_string(info.Length()));
  auto values = FloatArg(env, info[0], "values");
  const size_t n = values.ElementLength();
  const size_t K = Count(env, info[1], "K", 1, 2147483647.0);
  if (n % K != 0) {
    throw Napi::RangeError::New(env, "values must hold whole rows of K = " + std::to_string(K) + " elements, got " + std::to_string(n));
  }
  const kernels::KernelSet& ks = Kernels(env);
  float* data = values.Data();
  ForRows(&ThreadPool::global(), n / K, std::max<size_t>(1, 65536 / K), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) ks.softmax_row(data + r * K, K, 1.0f);
  });
  return env.Undefined();
}

// allFinite(values): whether every element of a Float32Array is finite, with the SIMD kernel of
// the chosen ISA. The TS checks ask it first for large arrays and look for the offending element
// only when it says no: C3's 1.6 M dense inputs take 0.07 ms here against 0.47 ms in JS.
Napi::Value AllFinite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw Napi::TypeError::New(env, "allFinite(values) expects 1 argument, got " + std::to_string(info.Length()));
  auto values = FloatArg(env, info[0], "values");
  return Napi::Boolean::New(env, Kernels(env).all_finite(values.Data(), values.ElementLength()));
}

// BPTT_ISA from this environment's process.env (a worker's is its own copy): the kernels it names,
// or the best supported when unset.
const kernels::KernelSet* KernelsFromEnvironment(Napi::Env env) {
  Napi::Value process = env.Global().Get("process");
  Napi::Value value = process.IsObject() ? process.As<Napi::Object>().Get("env") : env.Undefined();
  value = value.IsObject() ? value.As<Napi::Object>().Get("BPTT_ISA") : env.Undefined();
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  std::string error;
  const kernels::KernelSet* ks = find_kernels(name.empty() ? "auto" : name, &error);
  if (ks == nullptr) throw Napi::Error::New(env, "BPTT_ISA=" + name + ": " + error);
  return ks;
}

// Environments (the main thread, worker threads) that loaded the addon. The pool's workers are
// joined when the last one is torn down, so none outlives Node's teardown.
std::atomic<int> g_live_envs{0};

}  // namespace

void InitKernelBindings(Napi::Env env, Napi::Object exports) {
  State(env).kernels = KernelsFromEnvironment(env);
  g_live_envs.fetch_add(1);
  env.AddCleanupHook([] {
    if (g_live_envs.fetch_sub(1) == 1) ThreadPool::global().shutdown();
  });
  ExportGuarded<Isa>(env, exports, "isa");
  ExportGuarded<SupportedIsas>(env, exports, "supportedIsas");
  ExportGuarded<SetIsa>(env, exports, "setIsa");
  ExportGuarded<SetNumThreads>(env, exports, "setNumThreads");
  ExportGuarded<NumThreads>(env, exports, "numThreads");
  ExportGuarded<Gemm>(env, exports, "_gemm");
  ExportGuarded<GemmPacked>(env, exports, "_gemmPacked");
  ExportGuarded<TanhHook>(env, exports, "_tanh");
  ExportGuarded<SoftmaxXentHook>(env, exports, "_softmaxXent");
  ExportGuarded<SoftmaxHook>(env, exports, "_softmax");
  ExportGuarded<SoftmaxRows>(env, exports, "softmaxRows");
  ExportGuarded<AllFinite>(env, exports, "allFinite");
}

}  // namespace bptt
