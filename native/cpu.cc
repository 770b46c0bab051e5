#include "cpu.h"

#if defined(BPTT_X86_KERNELS)
#include <cpuid.h>
#endif

namespace bptt {
namespace {

struct IsaEntry {
  const char* name;
  const kernels::KernelSet* (*get)();
  bool (*supported)();
};

#if defined(BPTT_X86_KERNELS)
// XCR0: which register states the OS saves on a context switch. Wide registers are only usable
// when the OS saves them, whatever CPUID says.
unsigned long long ReadXcr0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512f = false;
};

CpuFeatures Detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
  if (!osxsave || !avx) return f;
  const unsigned long long xcr0 = ReadXcr0();
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;
  const bool zmm_saved = (xcr0 & 0xE6) == 0xE6;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2_fma = ymm_saved && fma && (b & (1u << 5));
  f.avx512f = f.avx2_fma && zmm_saved && (b & (1u << 16));
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures features = Detect();
  return features;
}
#endif

const IsaEntry kIsas[] = {
#if defined(BPTT_X86_KERNELS)
    {"avx512", [] { return &kernels::avx512_kernels(); }, [] { return Features().avx512f; }},
    {"avx2", [] { return &kernels::avx2_kernels(); }, [] { return Features().avx2_fma; }},
#endif
    {"scalar", [] { return &kernels::scalar_kernels(); }, [] { return true; }},
};

const kernels::KernelSet* Best() {
  for (const auto& isa : kIsas)
    if (isa.supported()) return isa.get();
  return &kernels::scalar_kernels();
}

std::string Names(bool supported_only) {
  std::string out;
  for (const auto& isa : kIsas) {
    if (supported_only && !isa.supported()) continue;
    out += out.empty() ? "" : ", ";
    out += isa.name;
  }
  return out;
}

}  // namespace

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const auto& isa : kIsas)
    if (isa.supported()) out.emplace_back(isa.name);
  return out;
}

const kernels::KernelSet* find_kernels(const std::string& name, std::string* error) {
  if (name == "auto") return Best();
  for (const auto& isa : kIsas) {
    if (name != isa.name) continue;
    if (isa.supported()) return isa.get();
    *error = "ISA '" + name + "' was requested but this CPU/OS cannot run it; supported here: " + Names(true);
    return nullptr;
  }
  *error = "unknown ISA '" + name + "'; this build has: " + Names(false) + " (or auto)";
  return nullptr;
}

}  // namespace bptt
