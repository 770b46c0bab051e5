#include <napi.h>

#include "bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  bptt::InitKernelBindings(env, exports);
  bptt::InitTensorBindings(env, exports);
  bptt::InitRnnBindings(env, exports);
  bptt::InitLayerBindings(env, exports);
  bptt::InitModelBindings(env, exports);
  bptt::InitBenchBindings(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(bptt, Init)
