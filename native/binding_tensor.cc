// Tensor storage: ArrayBuffers made by the realm's own ArrayBuffer constructor, so that V8 owns
// the memory. The GC frees what is forgotten as part of a collection (an external buffer's
// finalizer waits for the event loop, so a synchronous loop piled them up), a failed allocation is
// a RangeError instead of an abort, and no registry is shared between threads: a type tag on the
// buffer says it came from here. Each buffer is 63 bytes longer than asked and handed out as a
// DataView starting at its first 64-byte aligned byte, so kernels get aligned pointers (V8 never
// moves a backing store). A DataView, because V8 aborts the process when a typed array of more
// than 2^32 elements is made through its API, and a byte view of a tensor over 4 GiB would be one.
// release() detaches the buffer, which frees the memory at once.
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bindings.h"
#include "napi_guard.h"

namespace bptt {
namespace {

constexpr size_t kAlignment = 64;
// The largest tensor: 2^31 - 1 elements (every index stays in int32; lib/backend.ts MAX_ELEMENTS)
// of 4 bytes.
constexpr double kMaxBytes = 4.0 * 2147483647.0;
// Marks the ArrayBuffers allocate() made; release() frees nothing else.
constexpr napi_type_tag kTensorMemory = {0x62707474ULL << 32 | 0x74656e73ULL, 0x6f72206d656d6f72ULL};

std::string Format(double d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", d);
  return text;
}

// allocate(bytes) -> DataView of `bytes` zeroed bytes, 64-byte aligned, over a fresh ArrayBuffer
// of its own.
Napi::Value Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "allocate(bytes) expects one number");
  }
  const double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested >= 0 && requested <= kMaxBytes && requested == static_cast<double>(static_cast<uint64_t>(requested)))) {
    throw Napi::RangeError::New(env, "allocate: byte count must be an integer in [0, " + Format(kMaxBytes) +
                                         "] (the largest tensor: 2^31 - 1 elements of 4 bytes), got " + Format(requested));
  }
  const size_t bytes = static_cast<size_t>(requested);
  napi_value length = Napi::Number::New(env, static_cast<double>(bytes + kAlignment - 1));
  napi_value buffer;
  if (napi_new_instance(env, State(env).array_buffer.Value(), 1, &length, &buffer) != napi_ok) {
    // V8 throws a RangeError when it cannot have the memory; this one says how much was asked for.
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    throw Napi::RangeError::New(env, "allocate: out of memory for " + Format(requested) + " bytes");
  }
  void* data = nullptr;
  size_t total = 0;
  if (napi_get_arraybuffer_info(env, buffer, &data, &total) != napi_ok || data == nullptr ||
      total != bytes + kAlignment - 1 || napi_type_tag_object(env, buffer, &kTensorMemory) != napi_ok) {
    throw Napi::Error::New(env, "allocate: the ArrayBuffer constructor did not give a fresh buffer");
  }
  const size_t offset = (kAlignment - reinterpret_cast<uintptr_t>(data) % kAlignment) % kAlignment;
  return Napi::DataView::New(env, Napi::ArrayBuffer(env, buffer), offset, bytes);
}

// release(arrayBuffer): frees the memory now by detaching the buffer, so views read as empty
// instead of dangling. Idempotent.
Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArrayBuffer()) {
    throw Napi::TypeError::New(env, "release(arrayBuffer) expects one ArrayBuffer");
  }
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) return env.Undefined();
  if (!buffer.CheckTypeTag(&kTensorMemory)) {
    throw Napi::TypeError::New(env, "release: the ArrayBuffer was not made by allocate()");
  }
  if (State(env).busy_buffers.count(buffer.Data()) != 0) {
    throw InUse("release: an asynchronous job is using this memory; await it first");
  }
  buffer.Detach();
  return env.Undefined();
}

// Node's ArrayBuffer allocator is malloc. glibc raises its mmap threshold (up to 32 MiB) each time
// it unmaps a freed large block and serves later ones from the heap, where a freed block stays
// resident while smaller allocations live above it: measured, two rounds of 2,000 collected 1 MiB
// tensors left RSS 2 GB higher. Fixing the threshold at glibc's default (128 KiB) keeps every block
// from there up mapped on its own and unmapped when freed. Process-wide, so set once, and not
// when the user tuned malloc through its environment variables.
void KeepLargeBlocksMapped(Napi::Env env) {
#if defined(__GLIBC__)
  static std::once_flag once;
  Napi::Value process = env.Global().Get("process");
  Napi::Value vars = process.IsObject() ? process.As<Napi::Object>().Get("env") : env.Undefined();
  if (!vars.IsObject()) return;
  const Napi::Object names = vars.As<Napi::Object>();
  const Napi::Value tunables = names.Get("GLIBC_TUNABLES");
  const bool tuned = names.Has("MALLOC_MMAP_THRESHOLD_") || names.Has("MALLOC_TRIM_THRESHOLD_") ||
                     (tunables.IsString() && tunables.As<Napi::String>().Utf8Value().find("malloc") != std::string::npos);
  if (!tuned) std::call_once(once, [] { mallopt(M_MMAP_THRESHOLD, 128 * 1024); });
#else
  (void)env;
#endif
}

// _alignmentOf(typedArray) -> address of its first element modulo 64 (a test hook).
Napi::Value AlignmentOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "_alignmentOf expects a typed array");
  auto array = info[0].As<Napi::TypedArray>();
  const auto address = reinterpret_cast<uintptr_t>(static_cast<char*>(array.ArrayBuffer().Data()) + array.ByteOffset());
  return Napi::Number::New(env, static_cast<double>(address % kAlignment));
}

}  // namespace

void InitTensorBindings(Napi::Env env, Napi::Object exports) {
  Napi::Value constructor = env.Global().Get("ArrayBuffer");
  if (!constructor.IsFunction()) throw Napi::Error::New(env, "globalThis.ArrayBuffer is not a function");
  State(env).array_buffer = Napi::Persistent(constructor.As<Napi::Function>());
  KeepLargeBlocksMapped(env);
  ExportGuarded<Allocate>(env, exports, "allocate");
  ExportGuarded<Release>(env, exports, "release");
  ExportGuarded<AlignmentOf>(env, exports, "_alignmentOf");
}

}  // namespace bptt
