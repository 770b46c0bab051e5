// Registration functions of the addon's binding files; addon.cc calls each once at load.
#pragma once

#include <napi.h>

namespace bptt {

void InitTensorBindings(Napi::Env env, Napi::Object exports);
void InitRnnBindings(Napi::Env env, Napi::Object exports);
void InitLayerBindings(Napi::Env env, Napi::Object exports);
void InitModelBindings(Napi::Env env, Napi::Object exports);
void InitKernelBindings(Napi::Env env, Napi::Object exports);
void InitBenchBindings(Napi::Env env, Napi::Object exports);

}  // namespace bptt
