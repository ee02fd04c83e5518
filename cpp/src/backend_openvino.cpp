// OpenVINO IR artifacts (model.xml + model.bin; "openvino" and "openvino-int8" are both format
// "openvino") on the CPU through ov::Core: read_model, compile_model with the threads and inference
// precision asked for, one infer request; the counterpart of ast_deploy/runtime/openvino.py.
// Built with -DAST_WITH_OPENVINO (the pip wheel's headers and CMake config; see CMakeLists.txt).
//
// OpenVINO 2023.1+ C++ API (openvino/openvino.hpp): ov::Core::read_model(xml) finds the weights
// in the .bin of the same name (manifest format 2 lists both files; both hashes are checked before
// this runs), compile_model(model, "CPU", properties), CompiledModel::input(name) / output(name),
// create_infer_request(), InferRequest::set_tensor / infer / get_tensor. ov::Tensor over a host
// pointer wraps the caller's buffer without a copy.
//
// Under a reduced precision hint (bf16) the waveform IR runs as two compiled models, as in the
// Python runtime: the front end (framing, DFT, mel, log) in f32, the rest at the hint. OpenVINO's CPU
// plugin runs some of a bf16-hinted front end in bf16 despite the IR's precision marks, rounding every
// sample to an 8-bit mantissa. The exporter ships both halves as IRs of their own, listed in the
// manifest beside the whole one ("model.xml" -> "model.front.xml", "model.rest.xml"; see
// ast_deploy/export/openvino.py), so this backend only compiles files. Artifacts exported before the
// halves were shipped have the whole IR alone: for them, and only for them, the same cut is made here
// at load time (legacy_split_front_end below).
#include <openvino/op/parameter.hpp>
#include <openvino/openvino.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backend.h"
#include "cpu.h"

namespace ast::detail {
namespace {

constexpr const char* kFeatures = "features";  // the split models' boundary tensor

// ov::Exception messages span several lines and start with the OpenVINO source file that threw
// ("Exception from src/...cpp:123:"); keep what a user can act on, on one line.
std::string message(const std::exception& e) {
  std::istringstream lines(e.what());
  std::string line, out;
  while (std::getline(lines, line)) {
    line.erase(0, line.find_first_not_of(" \t"));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (line.empty() || line.rfind("Exception from ", 0) == 0 || line.rfind("Check '", 0) == 0) continue;
    out += (out.empty() ? "" : "; ") + line;
  }
  return out.empty() ? std::string(e.what()) : out;
}

// Options::inference_precision -> OpenVINO's INFERENCE_PRECISION_HINT. "f32" is also what an
// empty value means: the artifacts are float32 IRs (int8 ones quantise the GEMMs only), and f32 is
// what the parity gates were checked with; "bf16" is the opt-in speed-up on CPUs that have it.
ov::element::Type precision_hint(const std::string& name) {
  if (name.empty() || name == "f32" || name == "fp32") return ov::element::f32;
  if (name == "bf16") return ov::element::bf16;
  if (name == "f16" || name == "fp16") return ov::element::f16;
  throw BackendError("inference precision '" + name + "' is not one OpenVINO's CPU plugin takes (f32, bf16, f16)");
}

// The IRs of the front end and of the rest of the artifact's whole IR, where its manifest lists them
// (their hashes were checked with its other files): the exporter's naming, ast_deploy.runtime.openvino.split_files.
std::optional<std::pair<std::string, std::string>> split_files(const BackendConfig& config) {
  const std::string& primary = config.artifact.primary().file;
  const std::string suffix = ".xml";
  if (primary.size() <= suffix.size() || primary.compare(primary.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string stem = primary.substr(0, primary.size() - suffix.size());
  const std::string front = stem + ".front.xml", rest = stem + ".rest.xml";
  bool listed_front = false, listed_rest = false;
  for (const ArtifactFile& f : config.artifact.files) {
    listed_front = listed_front || f.file == front;
    listed_rest = listed_rest || f.file == rest;
  }
  if (!listed_front || !listed_rest) return std::nullopt;
  const std::filesystem::path dir(config.manifest.dir);
  return std::make_pair((dir / front).string(), (dir / rest).string());
}

// A copy of `model` with every input's batch axis fixed to `batch`.
std::shared_ptr<ov::Model> with_batch(const std::shared_ptr<ov::Model>& model, std::size_t batch) {
  std::shared_ptr<ov::Model> copy = model->clone();
  std::map<std::string, ov::PartialShape> shapes;
  for (const auto& input : copy->inputs()) {
    ov::PartialShape shape = input.get_partial_shape();
    shape[0] = static_cast<std::int64_t>(batch);
    shapes[input.get_any_name()] = shape;
  }
  copy->reshape(shapes);
  return copy;
}

// Artifacts exported before the halves were shipped only: (front end, rest) of a waveform IR, cut as the
// exporter cuts it (ast_deploy.runtime.openvino.split_front_end): at the patch embedding's input (the
// first Convolution's data input, above any FakeQuantize of an int8 IR); the front end maps the graph's
// inputs to the features; the rest takes "features" plus the graph's inputs (it reads the batch size off
// the waveform's shape).
std::pair<std::shared_ptr<ov::Model>, std::shared_ptr<ov::Model>> legacy_split_front_end(
    const std::shared_ptr<ov::Model>& model, const std::string& file) {
  std::shared_ptr<ov::Node> conv;
  for (const auto& op : model->get_ordered_ops()) {
    if (std::string(op->get_type_name()) == "Convolution") {
      conv = op;
      break;
    }
  }
  if (!conv) throw BackendError(file + ": IR has no Convolution (patch embedding) to split the front end off at");
  ov::Node* consumer = conv.get();  // the node whose input 0 is the boundary (ov::Input is not assignable)
  while (std::string(consumer->input_value(0).get_node()->get_type_name()) == "FakeQuantize")
    consumer = consumer->input_value(0).get_node();
  ov::Input<ov::Node> boundary = consumer->input(0);
  const ov::Output<ov::Node> source = boundary.get_source_output();
  auto front = std::make_shared<ov::Model>(ov::OutputVector{source}, model->get_parameters(), "front_end");
  auto features = std::make_shared<ov::op::v0::Parameter>(source.get_element_type(), source.get_partial_shape());
  features->set_friendly_name(kFeatures);
  features->output(0).get_tensor().set_names({kFeatures});
  boundary.replace_source_output(features->output(0));
  ov::ParameterVector parameters{features};
  for (const auto& p : model->get_parameters()) parameters.push_back(p);
  auto rest = std::make_shared<ov::Model>(model->get_results(), parameters, "transformer");
  return {front, rest};
}

class OpenVINOBackend final : public Backend {
 public:
  explicit OpenVINOBackend(const BackendConfig& config)
      : file_(config.file),
        waveform_(config.manifest.input_names.at(0)),
        lengths_(config.manifest.input_names.at(1)),
        output_(config.manifest.output_name),
        num_samples_(config.manifest.num_samples),
        num_labels_(config.manifest.labels.size()),
        embedding_dim_(config.manifest.embedding_dim) {
    if (config.options.device != "cpu")
      throw BackendError("device '" + config.options.device + "': the OpenVINO backend runs on the CPU only (--device cpu)");
    const ov::element::Type precision = precision_hint(config.options.inference_precision);
    // OpenVINO reports bf16 from cpuid even under ONEDNN_MAX_CPU_ISA; without bf16 hardware it would emulate it.
    if (precision == ov::element::bf16 && !cpu_info().bf16())
      throw BackendError("--precision-hint bf16: this CPU has no bf16 arithmetic (no avx512_bf16 or amx_bf16: " +
                         cpu_info().describe() + ")");
    // One cache per CPU class and precision, as the Python runtime keeps them: OpenVINO 2026.4's cache key
    // leaves the precision hint out (a bf16 load would import the f32 compilation of the IR), and the
    // compiled graph is transformed for the CPU's ISA.
    if (!config.options.cache_dir.empty())
      core_.set_property(ov::cache_dir(config.options.cache_dir + "/" + cpu_info().isa_class() + "/" +
                                       precision.get_type_name()));
    // The C++ runtime runs waveform IRs only: a reduced precision always runs the front end apart.
    split_ = precision != ov::element::f32;
    const auto halves = split_ ? split_files(config) : std::nullopt;
    std::string inputs_file = file_;  // the IR that takes the graph's inputs
    if (halves) {
      front_ = read(halves->first);
      model_ = read(halves->second);
      inputs_file = halves->first;
    } else {
      model_ = read(file_);
    }
    legacy_split_ = split_ && !halves;
    const std::shared_ptr<ov::Model>& takes_inputs = front_ ? front_ : model_;
    // The manifest's I/O names, as the exporter gave them to the IR's tensors.
    const auto port = [](const std::shared_ptr<ov::Model>& model, const std::string& file, const std::string& name,
                         bool input) {
      try {
        return input ? model->input(name) : model->output(name);
      } catch (const std::exception&) {
        std::string have;
        for (const auto& p : input ? model->inputs() : model->outputs())
          for (const std::string& n : p.get_names()) have += (have.empty() ? "" : ", ") + n;
        throw BackendError(file + ": IR has no " + (input ? "input" : "output") + " tensor '" + name +
                           "' (the manifest's I/O names; the IR has " + (have.empty() ? "none" : have) + ")");
      }
    };
    const ov::element::Type wave_type = port(takes_inputs, inputs_file, waveform_, true).get_element_type();
    lengths_type_ = port(takes_inputs, inputs_file, lengths_, true).get_element_type();
    port(model_, halves ? halves->second : file_, output_, false);
    if (embedding_dim_ > 0) port(model_, halves ? halves->second : file_, kEmbeddingOutput, false);
    if (takes_inputs->inputs().size() != 2)
      throw BackendError(inputs_file + ": IR has " + std::to_string(takes_inputs->inputs().size()) +
                         " inputs, expected 2");
    if (wave_type != ov::element::f32)
      throw BackendError(inputs_file + ": IR input '" + waveform_ + "' is " + wave_type.get_type_name() +
                         ", expected f32");
    if (lengths_type_ != ov::element::i64 && lengths_type_ != ov::element::i32)
      throw BackendError(inputs_file + ": IR input '" + lengths_ + "' is " + lengths_type_.get_type_name() +
                         ", expected i64 or i32");

    precision_ = precision;
    properties_ = ov::AnyMap{// one request at a time: all threads on it (what the Python runtime sets)
                             ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY)};
    if (config.options.threads > 0) properties_.emplace(ov::inference_num_threads(config.options.threads));
    // Compile now, for the smallest batch: load errors belong to loading.
    threads_ = requests(config.manifest.min_batch).compiled.get_property(ov::inference_num_threads);
  }

  std::vector<float> run(const float* waveform, const std::int64_t* lengths, std::size_t batch,
                         std::vector<float>* embedding) override {
    Compiled& c = requests(batch);
    try {
      // The graphs only read their inputs: the tensors alias the caller's buffers.
      const ov::Tensor wave(ov::element::f32, ov::Shape{batch, num_samples_}, const_cast<float*>(waveform));
      std::vector<std::int32_t> lengths32;
      ov::Tensor len;
      if (lengths_type_ == ov::element::i32) {
        lengths32.assign(lengths, lengths + batch);
        len = ov::Tensor(ov::element::i32, ov::Shape{batch}, lengths32.data());
      } else {
        len = ov::Tensor(ov::element::i64, ov::Shape{batch}, const_cast<std::int64_t*>(lengths));
      }
      if (split_) {  // the front end in f32; its output tensor feeds the rest without a copy
        c.front_request.set_tensor(waveform_, wave);
        c.front_request.set_tensor(lengths_, len);
        c.front_request.infer();
        c.request.set_tensor(kFeatures, c.front_request.get_output_tensor(0));
      }
      c.request.set_tensor(waveform_, wave);
      c.request.set_tensor(lengths_, len);
      c.request.infer();
      const ov::Tensor logits = c.request.get_tensor(output_);
      const ov::Shape shape = logits.get_shape();
      if (shape.size() != 2 || shape[0] != batch || shape[1] != num_labels_ || logits.get_element_type() != ov::element::f32) {
        throw BackendError(file_ + ": IR returned logits of shape " + logits.get_shape().to_string() + " " +
                           logits.get_element_type().get_type_name() + ", expected [" + std::to_string(batch) + ", " +
                           std::to_string(num_labels_) + "] f32");
      }
      if (embedding != nullptr) {  // by name, like the logits; copied out (the request reuses its buffers)
        const ov::Tensor emb = c.request.get_tensor(kEmbeddingOutput);
        if (emb.get_shape() != ov::Shape{batch, embedding_dim_} || emb.get_element_type() != ov::element::f32)
          throw BackendError(file_ + ": IR returned an embedding of shape " + emb.get_shape().to_string() +
                             ", expected [" + std::to_string(batch) + ", " + std::to_string(embedding_dim_) + "] f32");
        const float* e = emb.data<const float>();
        embedding->assign(e, e + batch * embedding_dim_);
      }
      const float* p = logits.data<const float>();
      return std::vector<float>(p, p + batch * num_labels_);
    } catch (const BackendError&) {
      throw;
    } catch (const std::exception& e) {
      throw BackendError(file_ + ": OpenVINO inference failed: " + message(e));
    }
  }

  int threads() const override { return threads_; }
  bool static_batch_shapes() const override { return true; }

 private:
  struct Compiled {
    ov::CompiledModel front, compiled;  // front: the f32 front end, when split_
    ov::InferRequest front_request, request;
  };

  // Read an IR (and the .bin beside it).
  std::shared_ptr<ov::Model> read(const std::string& file) {
    try {
      return core_.read_model(file);
    } catch (const std::exception& e) {
      throw BackendError(file + ": OpenVINO cannot read this IR: " + message(e));
    }
  }

  // The infer requests of a static ``batch``, compiled on first use. Static shapes let the CPU plugin
  // fuse an INT8 IR's FakeQuantize nodes into its int8 GEMMs (1.7x faster on AST-base than the
  // dynamic-batch IR), and the Python runtime compiles the same way, so both compute the same thing.
  Compiled& requests(std::size_t batch) {
    auto found = by_batch_.find(batch);
    if (found != by_batch_.end()) return found->second;
    if (by_batch_.size() >= kCompiledBatchSizes) by_batch_.clear();
    try {
      std::shared_ptr<ov::Model> model = with_batch(model_, batch);
      std::shared_ptr<ov::Model> front = front_ ? with_batch(front_, batch) : nullptr;
      if (legacy_split_) std::tie(front, model) = legacy_split_front_end(model, file_);
      Compiled c;
      const auto compile = [&](const std::shared_ptr<ov::Model>& m, ov::element::Type hint) {
        ov::AnyMap properties = properties_;
        properties.emplace(ov::hint::inference_precision(hint));
        return core_.compile_model(m, "CPU", properties);
      };
      if (front) {
        c.front = compile(front, ov::element::f32);
        c.front_request = c.front.create_infer_request();
      }
      c.compiled = compile(model, precision_);
      c.request = c.compiled.create_infer_request();
      return by_batch_.emplace(batch, std::move(c)).first->second;
    } catch (const BackendError&) {
      throw;
    } catch (const std::exception& e) {
      throw BackendError(file_ + ": OpenVINO cannot compile this IR for the CPU: " + message(e));
    }
  }

  static constexpr std::size_t kCompiledBatchSizes = 4;
  std::string file_, waveform_, lengths_, output_;
  std::size_t num_samples_, num_labels_, embedding_dim_;
  ov::Core core_;  // declared before the compiled models and requests: it must outlive them
  std::shared_ptr<ov::Model> model_;  // as read, dynamic batch: the whole IR, or the rest when split from files
  std::shared_ptr<ov::Model> front_;  // the front end's IR, when split from files; else null
  ov::element::Type precision_ = ov::element::f32;
  ov::AnyMap properties_;
  std::map<std::size_t, Compiled> by_batch_;
  bool split_ = false;         // the front end runs apart, in f32 (a reduced precision hint)
  bool legacy_split_ = false;  // ... cut from the whole IR here: an artifact exported without the halves
  ov::element::Type lengths_type_ = ov::element::i64;
  int threads_ = 0;
};

}  // namespace

std::unique_ptr<Backend> open_openvino(const BackendConfig& config) { return std::make_unique<OpenVINOBackend>(config); }

}  // namespace ast::detail
