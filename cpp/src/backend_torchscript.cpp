// TorchScript artifacts (model.ts) through libtorch's torch::jit::load: the file that
// ast_deploy/runtime/torchscript.py loads with torch.jit.load, run the same way.
#include <torch/script.h>

#include "torch_common.h"

namespace ast::detail {
namespace {

class TorchScriptBackend final : public Backend {
 public:
  explicit TorchScriptBackend(const BackendConfig& config)
      : file_(config.file),
        device_(torch_common::parse_device(config.options.device)),
        num_samples_(config.manifest.num_samples),
        num_labels_(config.manifest.labels.size()),
        embedding_dim_(config.manifest.embedding_dim) {
    torch_common::set_threads(config.options.threads);
    try {
      module_ = torch::jit::load(file_, device_);
      module_.eval();
    } catch (const c10::Error& e) {
      throw BackendError(file_ + ": libtorch cannot load this TorchScript file: " + torch_common::message(e));
    }
  }

  std::vector<float> run(const float* waveform, const std::int64_t* lengths, std::size_t batch,
                         std::vector<float>* embedding) override {
    try {
      c10::InferenceMode guard;
      const auto inputs = torch_common::graph_inputs(waveform, lengths, batch, num_samples_, device_);
      const c10::IValue out = module_.forward({inputs[0], inputs[1]});
      // (logits, embedding) since embeddings were exported; logits alone before.
      std::vector<at::Tensor> outputs;
      if (out.isTuple()) {
        for (const c10::IValue& v : out.toTupleRef().elements()) outputs.push_back(v.toTensor());
      } else {
        outputs.push_back(out.toTensor());
      }
      return torch_common::host_outputs(outputs, batch, num_labels_, embedding_dim_, embedding, file_);
    } catch (const c10::Error& e) {
      throw BackendError(file_ + ": TorchScript forward failed: " + torch_common::message(e));
    }
  }

  int threads() const override { return at::get_num_threads(); }

 private:
  std::string file_;
  c10::Device device_;
  std::size_t num_samples_, num_labels_, embedding_dim_;
  torch::jit::Module module_;
};

}  // namespace

std::unique_ptr<Backend> open_torchscript(const BackendConfig& config) {
  return std::make_unique<TorchScriptBackend>(config);
}

}  // namespace ast::detail
