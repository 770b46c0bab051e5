// What the binding files share: the state of one environment that loaded the addon, and their
// registration functions (addon.cc calls each once per load).
#pragma once

#include <napi.h>

#include <cstdint>
#include <unordered_map>

#include "kernels/kernels.h"

namespace bptt {

// Everything the addon keeps per environment (the main thread and each worker thread load it
// apart): nothing of it is shared between threads, so no lock guards it. The only process-wide
// state is the kernel thread pool (thread_pool.h), which is safe for concurrent callers, and the
// CPU's features (cpu.cc), which never change.
struct EnvState {
  // The kernels this environment's calls use (setIsa); a job takes them when it is made.
  const kernels::KernelSet* kernels = nullptr;
  // ArrayBuffers that asynchronous jobs are using, by data pointer, with how many jobs use each:
  // release() refuses to free them.
  std::unordered_map<const void*, uint32_t> busy_buffers;
  // The realm's ArrayBuffer constructor as it was at load time: tensor memory comes from it.
  Napi::FunctionReference array_buffer;
};

// This environment's state (made in addon.cc before any binding registers).
EnvState& State(Napi::Env env);

void InitTensorBindings(Napi::Env env, Napi::Object exports);
void InitRnnBindings(Napi::Env env, Napi::Object exports);
void InitLayerBindings(Napi::Env env, Napi::Object exports);
void InitModelBindings(Napi::Env env, Napi::Object exports);
void InitKernelBindings(Napi::Env env, Napi::Object exports);
void InitBenchBindings(Napi::Env env, Napi::Object exports);

}  // namespace bptt
