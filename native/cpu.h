// Run-time ISA selection: what the CPU and OS support, and the kernel set for a choice. Nothing
// here holds a choice: each environment keeps its own (bindings.h), the C++ bench its own.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace bptt {

// ISAs this build contains and this CPU + OS can run, best first (always ends with "scalar").
std::vector<std::string> supported_isas();

// The kernels of an ISA ("scalar", "avx2", "avx512", or "auto" for the best supported). Null, with
// *error saying why, when the name is unknown or this CPU/OS cannot run it.
const kernels::KernelSet* find_kernels(const std::string& name, std::string* error);

}  // namespace bptt
