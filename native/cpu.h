// Run-time ISA selection: what the CPU and OS support, and the kernel set in use.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace bptt {

// ISAs this build contains and this CPU + OS can run, best first (always ends with "scalar").
std::vector<std::string> supported_isas();

// The kernel set in use (the best supported until select_isa* says otherwise).
const kernels::KernelSet& active_kernels();

// Applies BPTT_ISA (or the best supported ISA when unset). Returns an error message, or "".
std::string select_isa_from_environment();

// Forces an ISA ("scalar", "avx2", "avx512", or "auto" for the best). Returns an empty string on
// success, else a message saying why the choice cannot run here (the active set is unchanged).
std::string select_isa(const std::string& name);

}  // namespace bptt
