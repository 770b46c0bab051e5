// Argument reading shared by the binding files of the recurrent engine and the models built on
// it: typed arrays checked for type, size and (inputs) finiteness, with messages that name the
// argument, what was expected and what came; and staging for asynchronous jobs.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "aligned_buffer.h"
#include "engine/layer.h"
#include "errors.h"
#include "async_job.h"
#include "napi_guard.h"

namespace bptt {
namespace args {

using engine::LayerSpec;

constexpr double kMaxElements = 2147483647.0;  // keeps every index inside int32

inline const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_int32_array: return "Int32Array";
    default: return "another typed array";
  }
}

inline std::string Describe(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) return TypedArrayName(v.As<Napi::TypedArray>().TypedArrayType());
  if (v.IsNumber()) return "number";
  if (v.IsString()) return "string";
  if (v.IsArray()) return "Array";
  return "object";
}

// The typed array v (of T's element type: float, double or int32_t, and `expected` elements), or
// null when optional and v is undefined/null; its ArrayBuffer in *buffer_out when asked.
template <class T>
T* ArrayArg(Napi::Env env, Napi::Value v, const std::string& name, size_t expected, bool optional,
            napi_value* buffer_out = nullptr) {
  if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value || std::is_same<T, int32_t>::value,
                "typed arrays of float, double or int32_t");
  constexpr napi_typedarray_type kType = std::is_same<T, float>::value    ? napi_float32_array
                                         : std::is_same<T, double>::value ? napi_float64_array
                                                                          : napi_int32_array;
  constexpr const char* kArticle = kType == napi_int32_array ? "an " : "a ";
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  // One Node-API call per array on the good path (napi_get_typedarray_info fails for anything
  // else): a small model's step is short enough for more to show.
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, nullptr) != napi_ok || type != kType) {
    throw Napi::TypeError::New(env, name + " must be " + kArticle + TypedArrayName(kType) + ", got " + Describe(v));
  }
  if (length != expected || data == nullptr) {
    // A disposed tensor's buffer is detached: its view reads as empty.
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached) {
      throw Napi::TypeError::New(env, name + " refers to freed (disposed) memory");
    }
    throw Napi::RangeError::New(env, name + " must have " + std::to_string(expected) + " elements, got " + std::to_string(length));
  }
  if (buffer_out != nullptr) *buffer_out = buffer;
  return static_cast<T*>(data);
}

inline void CheckFinite(Napi::Env env, const kernels::KernelSet& ks, const float* data, size_t n, const std::string& what) {
  if (!ks.all_finite(data, n)) throw Napi::RangeError::New(env, what + " contains NaN or infinite values");
}

inline size_t CountArg(Napi::Env env, Napi::Value v, const char* name, double lo, double hi) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi && d == std::floor(d))) {
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [" + std::to_string(static_cast<long long>(lo)) +
                                         ", " + std::to_string(static_cast<long long>(hi)) + "], got " +
                                         (v.IsNumber() ? std::to_string(d) : Describe(v)));
  }
  return static_cast<size_t>(d);
}

inline size_t Product(Napi::Env env, std::initializer_list<size_t> sizes, const char* what) {
  double n = 1;
  for (size_t s : sizes) n *= static_cast<double>(s);
  if (n > kMaxElements) throw Napi::RangeError::New(env, std::string(what) + " would exceed 2^31-1 elements");
  return static_cast<size_t>(n);
}


// An Array of parameter_count() Float32Arrays in parameter order.
// Inputs (weights) go through `stage->Input`, outputs (grads) through `stage->Output`, when staged.
template <class Ptr>
std::vector<Ptr> ParameterArrays(Napi::Env env, const kernels::KernelSet& ks, Napi::Value v, const LayerSpec& spec, const char* what, bool is_input,
                                 Staging* stage) {
  const size_t count = spec.parameter_count();
  if (!v.IsArray() || v.As<Napi::Array>().Length() != count) {
    throw Napi::TypeError::New(env, std::string(what) + " must be an Array of " + std::to_string(count) + " Float32Arrays, got " + Describe(v));
  }
  Napi::Array list = v.As<Napi::Array>();
  std::vector<Ptr> out(count);
  for (size_t p = 0; p < count; ++p) {
    const std::string name = std::string(what) + " " + spec.parameter_name(p);
    const Napi::Value array = list.Get(static_cast<uint32_t>(p));
    float* data = ArrayArg<float>(env, array, name, spec.parameter_size(p), false);
    if (is_input) {
      CheckFinite(env, ks, data, spec.parameter_size(p), name);
      out[p] = const_cast<Ptr>(stage ? stage->Input(data, spec.parameter_size(p)) : data);
    } else {
      out[p] = stage ? stage->Output(array, spec.parameter_size(p)) : data;
    }
  }
  return out;
}


// A layer spec from constructor arguments info[first ..]: cell, inputSize, hiddenSize, numLayers,
// bidirectional, dropout; `count` is the constructor's whole argument count.
inline LayerSpec ReadLayerSpec(const Napi::CallbackInfo& info, size_t first, size_t count, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() != count || !info[first].IsString() || !info[first + 4].IsBoolean() || !info[first + 5].IsNumber()) {
    throw Napi::TypeError::New(env, std::string(what) + "(cell, inputSize, hiddenSize, numLayers, bidirectional, dropout" +
                                        (count > 6 ? ", ..." : "") + ") expects a string, three integers, a boolean and a number");
  }
  LayerSpec spec;
  const std::string cell = info[first].As<Napi::String>().Utf8Value();
  if (!engine::parse_cell(cell.c_str(), &spec.cell)) {
    throw Napi::TypeError::New(env, "cell must be one of tanh, relu, lstm, gru, got '" + cell + "'");
  }
  spec.input = CountArg(env, info[first + 1], "inputSize", 1, kMaxElements);
  spec.hidden = CountArg(env, info[first + 2], "hiddenSize", 1, kMaxElements);
  spec.layers = CountArg(env, info[first + 3], "numLayers", 1, 1024);
  spec.bidirectional = info[first + 4].As<Napi::Boolean>().Value();
  const double dropout = info[first + 5].As<Napi::Number>().DoubleValue();
  if (!(dropout >= 0 && dropout < 1)) throw Napi::RangeError::New(env, "dropout must be in [0, 1), got " + std::to_string(dropout));
  spec.dropout = dropout;
  for (size_t p = 0; p < spec.parameter_count(); ++p) {
    const size_t l = p / (spec.directions() * 4);
    Product(env, {spec.gates(), spec.hidden, std::max(spec.layer_input(l), spec.hidden)}, "a weight matrix");
  }
  return spec;
}

// Token ids and lengths of a call, copied before their range checks, so memory the caller shares
// with another thread can change numbers but never an index.
struct OwnedIds {
  std::vector<int32_t> tokens, lengths;
};

// Reads a batch at info[first ..]: T, B, tokens | null, dense | null, lengths | null, h0 | null,
// c0 | null, training (boolean), dropout seed. Float inputs go through the staging.
inline engine::LayerInput ReadLayerInput(const Napi::CallbackInfo& info, const kernels::KernelSet& ks, size_t first,
                                         const LayerSpec& s, Staging* stage, OwnedIds& ids) {
  Napi::Env env = info.Env();
  auto given = [&](size_t i) { return !info[first + i].IsUndefined() && !info[first + i].IsNull(); };
  engine::LayerInput in;
  in.steps = CountArg(env, info[first], "steps (T)", 1, kMaxElements);
  in.batch = CountArg(env, info[first + 1], "batch (B)", 1, kMaxElements);
  const size_t T = in.steps, B = in.batch, H = s.hidden;
  const size_t rows = Product(env, {T, B}, "T*B");
  Product(env, {rows, s.gates() * H}, "the gate pre-activations");
  Product(env, {rows, s.output_width()}, "the outputs");
  const size_t state_n = Product(env, {s.layers * s.directions(), B, H}, "the states");
  if (given(2)) {
    if (given(3)) throw Napi::TypeError::New(env, "give tokens or dense inputs, not both");
    const int32_t* tokens = ArrayArg<int32_t>(env, info[first + 2], "tokens", rows, false);
    ids.tokens.assign(tokens, tokens + rows);
    for (size_t r = 0; r < rows; ++r) {
      if (ids.tokens[r] < 0 || static_cast<size_t>(ids.tokens[r]) >= s.input) {
        throw Napi::RangeError::New(env, "tokens[" + std::to_string(r) + "] = " + std::to_string(ids.tokens[r]) +
                                             " is outside [0, " + std::to_string(s.input) + ")");
      }
    }
    in.tokens = ids.tokens.data();
  } else {
    const size_t n = Product(env, {rows, s.input}, "dense inputs");
    const float* dense = ArrayArg<float>(env, info[first + 3], "dense inputs", n, false);
    CheckFinite(env, ks, dense, n, "dense inputs");
    in.dense = In(stage, dense, n);
  }
  if (given(4)) {
    const int32_t* lengths = ArrayArg<int32_t>(env, info[first + 4], "lengths", B, false);
    ids.lengths.assign(lengths, lengths + B);
    for (size_t b = 0; b < B; ++b) {
      if (ids.lengths[b] < 1 || static_cast<size_t>(ids.lengths[b]) > T) {
        throw Napi::RangeError::New(env, "lengths[" + std::to_string(b) + "] = " + std::to_string(ids.lengths[b]) +
                                             " is outside [1, " + std::to_string(T) + "]");
      }
    }
    in.lengths = ids.lengths.data();
  }
  const float* h0 = ArrayArg<float>(env, info[first + 5], "h0", state_n, true);
  if (h0) CheckFinite(env, ks, h0, state_n, "h0");
  in.h0 = In(stage, h0, state_n);
  if (given(6) && !engine::cell_info(s.cell).has_cell_state) throw Napi::TypeError::New(env, "c0 is only for lstm cells");
  const float* c0 = ArrayArg<float>(env, info[first + 6], "c0", state_n, true);
  if (c0) CheckFinite(env, ks, c0, state_n, "c0");
  in.c0 = In(stage, c0, state_n);
  if (!info[first + 7].IsBoolean()) throw Napi::TypeError::New(env, "training must be a boolean, got " + Describe(info[first + 7]));
  in.training = info[first + 7].As<Napi::Boolean>().Value();
  in.dropout_seed = static_cast<uint32_t>(CountArg(env, info[first + 8], "dropout seed", 0, 4294967295.0));
  return in;
}

}  // namespace args
}  // namespace bptt
