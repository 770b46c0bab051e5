// The one way a C++ failure leaves the addon: as a JS exception, never as a C++ exception
// unwinding into Node, which aborts the process. Every entry point of every binding file runs its
// body through Guarded(); an asynchronous job captures its failure on the worker thread
// (CaptureFailure) and turns it into a JS error back on the JS thread (MakeError).
//
// node-addon-api's own wrappers catch only Napi::Error, and rethrow when Node refuses the throw,
// which it does while a worker thread is being terminated: that rethrow escapes and aborts. So
// nothing here throws, and Node-API statuses are ignored where the only failure left is an
// environment that can no longer run JS, with nobody left to tell.
#pragma once

#include <napi.h>

#include <exception>
#include <new>
#include <string>

#include "errors.h"

namespace bptt {

// A failure captured on any thread, to be thrown or rejected on the JS thread.
struct Failure {
  enum class Kind { kError, kRangeError, kNonFinite, kInUse };
  Kind kind = Kind::kError;
  std::string message;
};

// Classifies a C++ exception without touching JS (safe off the JS thread).
inline Failure CaptureFailure(std::exception_ptr error) noexcept {
  Failure f;
  try {
    try {
      std::rethrow_exception(error);
    } catch (const NonFiniteGradient& e) {
      f.kind = Failure::Kind::kNonFinite;
      f.message = e.what();
    } catch (const InUse& e) {
      f.kind = Failure::Kind::kInUse;
      f.message = e.what();
    } catch (const std::bad_alloc&) {
      f.kind = Failure::Kind::kRangeError;
      f.message = "out of memory: a native allocation failed";
    } catch (const std::exception& e) {
      f.message = std::string("native error: ") + e.what();
    } catch (...) {
      f.message = "native error of an unknown type";
    }
  } catch (...) {
    f.message.clear();  // no memory left even for the message
  }
  return f;
}

// The JS error for a failure (with code BPTT_NON_FINITE or BPTT_IN_USE where it has one), or null
// when the environment cannot make one.
inline napi_value MakeError(napi_env env, const Failure& f) noexcept {
  const char* text = f.message.empty() ? "a native call failed (no memory left to say why)" : f.message.c_str();
  const char* code_text = f.kind == Failure::Kind::kNonFinite ? "BPTT_NON_FINITE"
                          : f.kind == Failure::Kind::kInUse   ? "BPTT_IN_USE"
                                                              : nullptr;
  napi_value message = nullptr, code = nullptr, error = nullptr;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok) return nullptr;
  if (code_text != nullptr && napi_create_string_utf8(env, code_text, NAPI_AUTO_LENGTH, &code) != napi_ok) return nullptr;
  const napi_status status = f.kind == Failure::Kind::kRangeError ? napi_create_range_error(env, code, message, &error)
                                                                  : napi_create_error(env, code, message, &error);
  return status == napi_ok ? error : nullptr;
}

// Runs body() and returns its value; any exception it throws becomes a pending JS exception and an
// empty return value (what a throwing Node-API callback returns).
template <class Body>
Napi::Value Guarded(napi_env env, Body&& body) noexcept {
  try {
    return body();
  } catch (const Napi::Error& e) {
    try {
      napi_throw(env, e.Value());
    } catch (...) {
      // The environment is going away: nobody to throw to.
    }
  } catch (...) {
    if (napi_value error = MakeError(env, CaptureFailure(std::current_exception()))) napi_throw(env, error);
  }
  return Napi::Value();
}

// A function entry point with its body guarded; register it as Napi::Function::New<Entry<F>>.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Entry(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] { return F(info); });
}

// exports[name] = the guarded function F.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void ExportGuarded(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Entry<F>>(env, name));
}

}  // namespace bptt
