// Tensor storage: 64-byte aligned native memory exposed to JS as external ArrayBuffers, so the
// TS Tensor views it without copies and kernels get aligned pointers. Memory is reported to V8
// so the GC sees its pressure, and is freed either by an explicit release (dispose) or by the
// ArrayBuffer's finalizer, whichever comes first.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>

#if !defined(_WIN32)
#include <sys/mman.h>
#endif

#include "bindings.h"

namespace bptt {
namespace {

constexpr size_t kAlignment = 64;
// Largest allocation accepted: what a JS typed array of 2^31 - 1 float64 could need.
constexpr size_t kMaxBytes = (size_t{1} << 31) * 8;
// Blocks at least this large are mapped from the OS and unmapped when freed. From malloc, glibc
// may keep freed blocks resident (small allocations above them stop the heap from shrinking, and
// its adaptive mmap threshold moves large blocks onto the heap): measured, 2,000 collected 1 MiB
// tensors left RSS 2 GB higher although every block had been freed.
constexpr size_t kMapThreshold = 256 * 1024;

// The ownership record outlives the memory: the finalizer may run after an explicit release.
struct Allocation {
  void* base;  // what malloc or mmap returned
  void* data;  // the aligned block handed out
  size_t bytes;
  bool mapped;
  bool released;
};

// `total` bytes from the OS (zeroed, page-aligned) or from malloc; null when out of memory.
void* AllocateBlock(size_t total, bool* mapped) {
#if !defined(_WIN32)
  if (total >= kMapThreshold) {
    void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *mapped = base != MAP_FAILED;
    if (*mapped) return base;
  }
#endif
  *mapped = false;
  return std::malloc(total);
}

void FreeBlock(const Allocation& a) {
#if !defined(_WIN32)
  if (a.mapped) {
    munmap(a.base, a.bytes);
    return;
  }
#endif
  std::free(a.base);
}

// Data pointers handed out and not yet freed; release() refuses any other buffer. Touched
// only on the JS thread (allocation, release and finalizers all run there).
std::unordered_set<void*>& LiveBlocks() {
  static std::unordered_set<void*> blocks;
  return blocks;
}

void Free(Napi::Env env, Allocation* a) {
  if (a->released) return;
  a->released = true;
  LiveBlocks().erase(a->data);
  FreeBlock(*a);
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(a->bytes));
}

// The allocation record is stored just before the aligned block, so release() can find it from
// the ArrayBuffer's data pointer alone.
Allocation** RecordSlot(void* data) { return static_cast<Allocation**>(data) - 1; }

// allocate(bytes) -> ArrayBuffer of `bytes` zeroed bytes, 64-byte aligned.
Napi::Value Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "allocate(bytes) expects one number");
  }
  const double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested >= 0) || requested != static_cast<double>(static_cast<size_t>(requested)) ||
      requested > static_cast<double>(kMaxBytes)) {
    throw Napi::RangeError::New(env, "allocate: byte count must be an integer in [0, 2^34], got " +
                                         info[0].ToString().Utf8Value());
  }
  const size_t bytes = static_cast<size_t>(requested);
  // The Allocation pointer sits just before the aligned block. Small blocks come from plain
  // malloc, aligned by hand: glibc's aligned_alloc over-allocates and splits chunks, and a freed
  // chunk then cannot serve the next request of the same size, so the heap grows.
  const size_t payload = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const size_t total = payload + 2 * kAlignment;
  bool mapped = false;
  char* base = static_cast<char*>(AllocateBlock(total, &mapped));
  if (base == nullptr) {
    throw Napi::RangeError::New(env, "allocate: out of memory for " + std::to_string(bytes) + " bytes");
  }
  const uintptr_t first = reinterpret_cast<uintptr_t>(base) + sizeof(Allocation*);
  void* data = reinterpret_cast<void*>((first + kAlignment - 1) / kAlignment * kAlignment);
  if (!mapped) std::memset(data, 0, payload);  // mapped pages arrive zeroed
  auto* record = new Allocation{base, data, total, mapped, false};
  *RecordSlot(data) = record;
  LiveBlocks().insert(data);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(total));
  return Napi::ArrayBuffer::New(env, data, bytes, [](Napi::Env env, void*, Allocation* a) {
    Free(env, a);
    delete a;
  }, record);
}

// release(arrayBuffer): frees the memory now and detaches the buffer, so views read as empty
// instead of dangling. Idempotent.
Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArrayBuffer()) {
    throw Napi::TypeError::New(env, "release(arrayBuffer) expects one ArrayBuffer");
  }
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) return env.Undefined();
  void* data = buffer.Data();
  if (LiveBlocks().count(data) == 0) {
    throw Napi::TypeError::New(env, "release: the ArrayBuffer was not made by allocate()");
  }
  // Freed before detaching: Node may run the finalizer during Detach, and it must find the
  // record already released.
  Free(env, *RecordSlot(data));
  buffer.Detach();
  return env.Undefined();
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
  exports.Set("allocate", Napi::Function::New(env, Allocate, "allocate"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("_alignmentOf", Napi::Function::New(env, AlignmentOf, "_alignmentOf"));
}

}  // namespace bptt
