// See cpu.h. The tables mirror ast_deploy/cpu.py; tests/test_cpp.py runs the host under the same caps.
#include "cpu.h"

#include <cctype>
#include <cstdlib>
#include <map>
#include <sstream>

namespace ast::detail {
namespace {

const std::set<std::string> kAvx512 = {"avx512f", "avx512dq", "avx512bw", "avx512vl"};
const std::set<std::string> kAboveAvx2 = {"avx_vnni", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                                          "amx_tile", "amx_bf16", "amx_int8"};
const std::set<std::string> kAboveAvx512Bf16 = {"avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"};

std::set<std::string> unite(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

std::set<std::string> without(std::set<std::string> a, const std::set<std::string>& b) {
  for (const auto& x : b) a.erase(x);
  return a;
}

// Flags removed by each ONEDNN_MAX_CPU_ISA value (oneDNN's names; ast_deploy.cpu.ONEDNN_CAPS).
const std::map<std::string, std::set<std::string>>& onednn_caps() {
  static const std::map<std::string, std::set<std::string>> caps = {
      {"SSE41", unite(unite({"avx", "avx2", "fma"}, kAvx512), kAboveAvx2)},
      {"AVX", unite(unite({"avx2", "fma"}, kAvx512), kAboveAvx2)},
      {"AVX2", unite(kAvx512, kAboveAvx2)},
      {"AVX2_VNNI", unite(kAvx512, without(kAboveAvx2, {"avx_vnni"}))},
      {"AVX2_VNNI_2", unite(kAvx512, without(kAboveAvx2, {"avx_vnni"}))},
      {"AVX512_CORE", kAboveAvx2},
      {"AVX512_CORE_VNNI", without(kAboveAvx2, {"avx_vnni", "avx512_vnni"})},
      {"AVX512_CORE_BF16", kAboveAvx512Bf16},
      {"AVX512_CORE_FP16", without(kAboveAvx512Bf16, {"avx512_fp16"})},
      {"AVX10_1_512", without(kAboveAvx512Bf16, {"avx512_fp16"})},
  };
  return caps;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::set<std::string> hardware_flags() {
  std::set<std::string> flags;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // (cpuinfo name, compiler builtin name)
  const std::pair<const char*, int> known[] = {
      {"avx", __builtin_cpu_supports("avx")},
      {"avx2", __builtin_cpu_supports("avx2")},
      {"fma", __builtin_cpu_supports("fma")},
      {"avx_vnni", __builtin_cpu_supports("avxvnni")},
      {"avx512f", __builtin_cpu_supports("avx512f")},
      {"avx512dq", __builtin_cpu_supports("avx512dq")},
      {"avx512bw", __builtin_cpu_supports("avx512bw")},
      {"avx512vl", __builtin_cpu_supports("avx512vl")},
      {"avx512_vnni", __builtin_cpu_supports("avx512vnni")},
      {"avx512_bf16", __builtin_cpu_supports("avx512bf16")},
      {"avx512_fp16", __builtin_cpu_supports("avx512fp16")},
      {"amx_tile", __builtin_cpu_supports("amx-tile")},
      {"amx_bf16", __builtin_cpu_supports("amx-bf16")},
      {"amx_int8", __builtin_cpu_supports("amx-int8")},
  };
  for (const auto& [name, present] : known)
    if (present) flags.insert(name);
#endif
  return flags;
}

CpuInfo read_cpu() {
  CpuInfo info;
  info.flags = hardware_flags();
  if (const char* value = std::getenv("ONEDNN_MAX_CPU_ISA"); value && *value) {
    const auto cap = onednn_caps().find(upper(value));
    if (cap != onednn_caps().end()) {
      info.flags = without(info.flags, cap->second);
      info.caps = std::string("ONEDNN_MAX_CPU_ISA=") + upper(value);
    }
  }
  if (const char* value = std::getenv("ATEN_CPU_CAPABILITY"); value && std::string(value) == "avx2") {
    info.flags = without(info.flags, unite(kAvx512, kAboveAvx2));
    info.caps += std::string(info.caps.empty() ? "" : ", ") + "ATEN_CPU_CAPABILITY=avx2";
  }
  return info;
}

}  // namespace

std::string CpuInfo::isa_class() const {
  if (!has("avx2") || !has("fma")) return "other";
  bool avx512 = true;
  for (const auto& f : kAvx512) avx512 = avx512 && has(f);
  if (avx512) {
    if (has("amx_tile") && has("amx_int8") && has("amx_bf16")) return "amx";
    if (has("avx512_bf16") && has("avx512_vnni")) return "avx512-bf16";
    return has("avx512_vnni") ? "avx512-vnni" : "avx512";
  }
  return has("avx_vnni") ? "avx2-vnni" : "avx2";
}

std::string CpuInfo::describe() const {
  return isa_class() + (caps.empty() ? "" : ", capped by " + caps);
}

std::vector<std::string> CpuInfo::missing_for_isa(const std::string& compiled_isa) const {
  static const std::map<std::string, std::set<std::string>> needs = {
      {"avx2", {"avx2", "fma"}},
      {"avx512", unite({"avx2", "fma"}, kAvx512)},
      {"avx512_vnni", {"avx512_vnni"}},
      {"amx_tile", {"amx_tile", "amx_bf16", "amx_int8"}},
  };
  std::set<std::string> needed;
  std::istringstream parts(compiled_isa);
  std::string part;
  while (parts >> part)
    if (const auto it = needs.find(part); it != needs.end()) needed.insert(it->second.begin(), it->second.end());
  std::vector<std::string> missing;
  for (const auto& flag : needed)
    if (!has(flag)) missing.push_back(flag);
  return missing;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu();
  return info;
}

}  // namespace ast::detail
