#include <napi.h>

#include "bindings.h"
#include "napi_guard.h"

namespace bptt {

EnvState& State(Napi::Env env) { return *env.GetInstanceData<EnvState>(); }

// Registered here rather than in bindings.h: binding_diagnostics.cc is the only file with it.
void InitDiagnosticsBindings(Napi::Env env, Napi::Object exports);

}  // namespace bptt

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Guarded like every entry point: a failed load is a JS exception from require().
  const Napi::Value result = bptt::Guarded(env, [&]() -> Napi::Value {
    env.SetInstanceData(new bptt::EnvState());  // deleted by Node when the environment goes
    bptt::InitKernelBindings(env, exports);
    bptt::InitTensorBindings(env, exports);
    bptt::InitRnnBindings(env, exports);
    bptt::InitLayerBindings(env, exports);
    bptt::InitModelBindings(env, exports);
    bptt::InitDiagnosticsBindings(env, exports);
    bptt::InitBenchBindings(env, exports);
    return exports;
  });
  return result.IsEmpty() ? Napi::Object() : exports;
}

}  // namespace

NODE_API_MODULE(bptt, Init)
