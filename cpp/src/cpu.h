// What this CPU can compute fast and exactly: the C++ side of ast_deploy/cpu.py (same classes, same
// caps). Backends use it to refuse what the CPU cannot run: bf16 without bf16 hardware (it would be
// emulated), int8 torch._int_mm without VNNI/AMX (30x slower than float32), an AOTInductor package
// compiled for an ISA the CPU lacks (it would stop with an illegal instruction).
#pragma once

#include <set>
#include <string>
#include <vector>

namespace ast::detail {

struct CpuInfo {
  std::set<std::string> flags;  // /proc/cpuinfo names (avx2, avx512f, avx512_vnni, amx_int8, ...), less the caps
  std::string caps;             // "ONEDNN_MAX_CPU_ISA=AVX2, ..." when a cap is in effect, else ""

  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  bool bf16() const { return has("avx512_bf16") || has("amx_bf16"); }
  bool int8_dot() const { return has("avx512_vnni") || has("avx_vnni") || has("amx_int8"); }
  // "avx2", "avx2-vnni", "avx512", "avx512-vnni", "avx512-bf16", "amx" or "other" (ast_deploy.cpu.CpuInfo.isa_class).
  std::string isa_class() const;
  // "avx2 (capped by ONEDNN_MAX_CPU_ISA=AVX2)", for messages.
  std::string describe() const;
  // Flags that code compiled for Inductor's vector ISA ("avx512 avx512_vnni amx_tile") needs and this CPU lacks.
  std::vector<std::string> missing_for_isa(const std::string& compiled_isa) const;
};

// This process's CPU, read once (cpuid through the compiler's builtins, then ONEDNN_MAX_CPU_ISA and
// ATEN_CPU_CAPABILITY applied, as oneDNN and ATen apply them).
const CpuInfo& cpu_info();

}  // namespace ast::detail
