// AOTInductor packages (model.pt2) through libtorch's C++ loader, the counterpart of
// torch._inductor.aoti_load_package in ast_deploy/runtime/aoti.py. The package holds a shared
// library compiled for one device type (manifest: artifacts[].device) and, on the CPU, one vector
// ISA (artifacts[].cpu_isa); it runs only there. The int8 package (torch._int_mm) is refused on CPUs
// without VNNI/AMX, where it runs about 30x slower than float32 (as the Python runtime refuses it).
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "cpu.h"
#include "torch_common.h"

namespace ast::detail {
namespace {

class AOTInductorBackend final : public Backend {
 public:
  explicit AOTInductorBackend(const BackendConfig& config)
      : file_(config.file),
        device_(torch_common::parse_device(config.options.device)),
        num_samples_(config.manifest.num_samples),
        num_labels_(config.manifest.labels.size()),
        embedding_dim_(config.manifest.embedding_dim) {
    const std::string compiled_for = config.artifact.device.empty() ? "cpu" : config.artifact.device;
    if (torch_common::parse_device(compiled_for).type() != device_.type()) {
      throw BackendError(file_ + ": AOTInductor package was compiled for " + compiled_for + ", not " +
                         config.options.device);
    }
    if (device_.is_cpu()) {
      const CpuInfo& cpu = cpu_info();
      std::string lacking;
      for (const auto& flag : cpu.missing_for_isa(config.artifact.cpu_isa)) lacking += (lacking.empty() ? "" : ", ") + flag;
      if (!lacking.empty())
        throw BackendError(file_ + ": the AOTInductor package was compiled for " + config.artifact.cpu_isa +
                           " and this CPU lacks " + lacking + " (" + cpu.describe() + "): re-export it on this machine");
      if (config.artifact.precision == "int8" && !cpu.int8_dot())
        throw BackendError(file_ + ": this CPU has no int8 dot product (VNNI or AMX-INT8): torch._int_mm falls back to a "
                           "kernel about 30x slower than float32 (" + cpu.describe() + ")");
    }
    torch_common::set_threads(config.options.threads);
    try {
      loader_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(file_);
    } catch (const c10::Error& e) {
      throw BackendError(file_ + ": libtorch cannot load this AOTInductor package: " + torch_common::message(e));
    } catch (const std::exception& e) {  // the loader also throws std::runtime_error (unzip, dlopen)
      throw BackendError(file_ + ": libtorch cannot load this AOTInductor package: " + e.what());
    }
  }

  std::vector<float> run(const float* waveform, const std::int64_t* lengths, std::size_t batch,
                         std::vector<float>* embedding) override {
    try {
      c10::InferenceMode guard;
      const std::vector<at::Tensor> out =
          loader_->run(torch_common::graph_inputs(waveform, lengths, batch, num_samples_, device_));
      if (out.empty()) throw BackendError(file_ + ": AOTInductor package returned no outputs");
      return torch_common::host_outputs(out, batch, num_labels_, embedding_dim_, embedding, file_);
    } catch (const c10::Error& e) {
      throw BackendError(file_ + ": AOTInductor run failed: " + torch_common::message(e));
    }
  }

  int threads() const override { return at::get_num_threads(); }

 private:
  std::string file_;
  c10::Device device_;
  std::size_t num_samples_, num_labels_, embedding_dim_;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
};

}  // namespace

std::unique_ptr<Backend> open_aoti(const BackendConfig& config) {
  return std::make_unique<AOTInductorBackend>(config);
}

}  // namespace ast::detail
