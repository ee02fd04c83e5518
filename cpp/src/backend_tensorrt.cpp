// TensorRT engines (model.plan): deserialise, one execution context, set the input shapes within
// the optimisation profile, enqueueV3 on a CUDA stream. The counterpart of
// ast_deploy/runtime/tensorrt.py. Built only with -DAST_WITH_TENSORRT (TensorRT headers and the
// CUDA toolkit found); it has not been compiled or run in this project's CI, which has neither.
//
// Written against NVIDIA's documentation of the TensorRT 10.x / 11.x C++ API:
//  - "Migrating C++ Code from TensorRT 8.x to 10.x" (enqueueV3 replaces enqueueV2: setTensorAddress
//    for each I/O tensor, by the names from getIOTensorName, then enqueueV3(stream)):
//    https://docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-8x-to-10x-c-api-patterns.html
//  - "Removed and Deprecated C++ APIs in TensorRT 11.x" (builder flags, IAlgorithm*, V2 plugins,
//    memory-size getters are gone; none of the runtime calls below is):
//    https://docs.nvidia.com/deeplearning/tensorrt/11.4.0/api/migration/tensorrt-10x-to-11x-c-api-reference.html
//  - nvinfer1::ICudaEngine / IExecutionContext / IRuntime class references (10.x, NvInferRuntime.h):
//    createInferRuntime(ILogger&), IRuntime::deserializeCudaEngine(void const*, size_t),
//    ICudaEngine::createExecutionContext(), getNbIOTensors(), getIOTensorName(int32_t),
//    getTensorIOMode(char const*), getTensorDataType(char const*),
//    getProfileShape(char const*, int32_t, OptProfileSelector), IExecutionContext::setInputShape(
//    char const*, Dims const&), getTensorShape(char const*), setTensorAddress(char const*, void*),
//    enqueueV3(cudaStream_t). Objects are released with delete (destroy() went in 10.0).
// The engine's inputs and outputs are float32 (onnx_fp16.py keeps graph I/O in float32) and
// num_samples is int64; int32 lengths are accepted too, anything else is refused. Outputs are bound by
// tensor name: "logits", and "embedding" in engines built since embeddings were exported (the
// manifest lists it); TensorRT needs an address for every output, so the embedding is always bound
// and copied to the host only when asked.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

#if NV_TENSORRT_MAJOR < 10
#error "the TensorRT backend needs TensorRT 10 or newer (name-based I/O tensors, enqueueV3, 64-bit Dims)"
#endif

namespace ast::detail {
namespace {

// Keeps TensorRT's last error so that it can go into the exception's message (one line).
class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kERROR) last_error = msg;
  }
  std::string last_error;
};

// Owns one device allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  void allocate(std::size_t bytes, const std::string& where) {
    const cudaError_t status = cudaMalloc(&ptr_, bytes);
    if (status != cudaSuccess)
      throw BackendError(where + ": cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(status));
  }
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

// Owns one CUDA stream.
class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  void create(const std::string& where) {
    const cudaError_t status = cudaStreamCreate(&stream_);
    if (status != cudaSuccess) throw BackendError(where + ": cudaStreamCreate failed: " + cudaGetErrorString(status));
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

void check(cudaError_t status, const char* what, const std::string& where) {
  if (status != cudaSuccess) throw BackendError(where + ": " + what + " failed: " + cudaGetErrorString(status));
}

// "cuda" / "cuda:N" -> N; TensorRT runs on a CUDA device whatever the caller's default ("cpu").
int device_index(const std::string& device) {
  const std::string prefix = "cuda:";
  if (device.compare(0, prefix.size(), prefix) != 0) return 0;
  const std::string index = device.substr(prefix.size());
  if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos)
    throw BackendError("device '" + device + "' is not cuda or cuda:N");
  return std::stoi(index);
}

class TensorRTBackend final : public Backend {
 public:
  explicit TensorRTBackend(const BackendConfig& config)
      : file_(config.file),
        waveform_(config.manifest.input_names.at(0)),
        lengths_(config.manifest.input_names.at(1)),
        output_(config.manifest.output_name),
        num_samples_(config.manifest.num_samples),
        num_labels_(config.manifest.labels.size()),
        embedding_dim_(config.manifest.embedding_dim),
        device_(device_index(config.options.device)) {
    check(cudaSetDevice(device_), "cudaSetDevice", file_);

    std::ifstream in(file_, std::ios::binary);
    const std::vector<char> plan((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (plan.empty()) throw BackendError(file_ + ": cannot read the TensorRT engine");

    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw BackendError(file_ + ": cannot create a TensorRT runtime: " + logger_.last_error);
    engine_.reset(runtime_->deserializeCudaEngine(plan.data(), plan.size()));
    if (!engine_) {
      throw BackendError(file_ + ": TensorRT could not deserialise the engine (built with another TensorRT or GPU?): " +
                         logger_.last_error);
    }
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw BackendError(file_ + ": cannot create a TensorRT execution context: " + logger_.last_error);

    expect(waveform_, nvinfer1::TensorIOMode::kINPUT);
    expect(lengths_, nvinfer1::TensorIOMode::kINPUT);
    expect(output_, nvinfer1::TensorIOMode::kOUTPUT);
    const int io_tensors = embedding_dim_ > 0 ? 4 : 3;
    if (embedding_dim_ > 0) expect(kEmbeddingOutput, nvinfer1::TensorIOMode::kOUTPUT);
    if (engine_->getNbIOTensors() != io_tensors)
      throw BackendError(file_ + ": engine has " + std::to_string(engine_->getNbIOTensors()) + " I/O tensors, expected " +
                         std::to_string(io_tensors));
    require_type(waveform_, {nvinfer1::DataType::kFLOAT});
    require_type(output_, {nvinfer1::DataType::kFLOAT});
    if (embedding_dim_ > 0) require_type(kEmbeddingOutput, {nvinfer1::DataType::kFLOAT});
    require_type(lengths_, {nvinfer1::DataType::kINT64, nvinfer1::DataType::kINT32});
    lengths_int32_ = engine_->getTensorDataType(lengths_.c_str()) == nvinfer1::DataType::kINT32;

    // The batch range of profile 0 (the only one the exporter builds).
    min_batch_ = engine_->getProfileShape(waveform_.c_str(), 0, nvinfer1::OptProfileSelector::kMIN).d[0];
    max_batch_ = engine_->getProfileShape(waveform_.c_str(), 0, nvinfer1::OptProfileSelector::kMAX).d[0];
    if (max_batch_ < 1) throw BackendError(file_ + ": engine has no optimisation profile for '" + waveform_ + "'");

    stream_.create(file_);
    const auto rows = static_cast<std::size_t>(max_batch_);
    d_waveform_.allocate(rows * num_samples_ * sizeof(float), file_);
    d_lengths_.allocate(rows * sizeof(std::int64_t), file_);
    d_logits_.allocate(rows * num_labels_ * sizeof(float), file_);
    if (embedding_dim_ > 0) d_embedding_.allocate(rows * embedding_dim_ * sizeof(float), file_);
  }

  std::vector<float> run(const float* waveform, const std::int64_t* lengths, std::size_t batch,
                         std::vector<float>* embedding) override {
    check(cudaSetDevice(device_), "cudaSetDevice", file_);  // the current device is per host thread
    const auto b = static_cast<std::int64_t>(batch);
    if (b < min_batch_ || b > max_batch_) {
      throw BackendError(file_ + ": batch " + std::to_string(batch) + " outside the engine's profile " +
                         std::to_string(min_batch_) + ".." + std::to_string(max_batch_));
    }
    nvinfer1::Dims wave_shape{};
    wave_shape.nbDims = 2;
    wave_shape.d[0] = b;
    wave_shape.d[1] = static_cast<std::int64_t>(num_samples_);
    nvinfer1::Dims len_shape{};
    len_shape.nbDims = 1;
    len_shape.d[0] = b;
    if (!context_->setInputShape(waveform_.c_str(), wave_shape) || !context_->setInputShape(lengths_.c_str(), len_shape))
      throw BackendError(file_ + ": TensorRT refused input shapes for batch " + std::to_string(batch) + ": " + logger_.last_error);

    const nvinfer1::Dims out = context_->getTensorShape(output_.c_str());
    if (out.nbDims != 2 || out.d[0] != b || out.d[1] != static_cast<std::int64_t>(num_labels_))
      throw BackendError(file_ + ": engine output '" + output_ + "' does not have shape [batch, " + std::to_string(num_labels_) + "]");

    check(cudaMemcpyAsync(d_waveform_.get(), waveform, batch * num_samples_ * sizeof(float), cudaMemcpyHostToDevice, stream_.get()),
          "cudaMemcpyAsync (waveform)", file_);
    std::vector<std::int32_t> lengths32;
    const void* host_lengths = lengths;
    std::size_t length_bytes = batch * sizeof(std::int64_t);
    if (lengths_int32_) {
      lengths32.assign(lengths, lengths + batch);
      host_lengths = lengths32.data();
      length_bytes = batch * sizeof(std::int32_t);
    }
    check(cudaMemcpyAsync(d_lengths_.get(), host_lengths, length_bytes, cudaMemcpyHostToDevice, stream_.get()),
          "cudaMemcpyAsync (num_samples)", file_);

    if (!context_->setTensorAddress(waveform_.c_str(), d_waveform_.get()) ||
        !context_->setTensorAddress(lengths_.c_str(), d_lengths_.get()) ||
        !context_->setTensorAddress(output_.c_str(), d_logits_.get()) ||
        (embedding_dim_ > 0 && !context_->setTensorAddress(kEmbeddingOutput, d_embedding_.get())))
      throw BackendError(file_ + ": TensorRT refused a tensor address: " + logger_.last_error);
    if (!context_->enqueueV3(stream_.get())) throw BackendError(file_ + ": TensorRT enqueueV3 failed: " + logger_.last_error);

    std::vector<float> logits(batch * num_labels_);
    check(cudaMemcpyAsync(logits.data(), d_logits_.get(), logits.size() * sizeof(float), cudaMemcpyDeviceToHost, stream_.get()),
          "cudaMemcpyAsync (logits)", file_);
    if (embedding != nullptr) {
      embedding->resize(batch * embedding_dim_);
      check(cudaMemcpyAsync(embedding->data(), d_embedding_.get(), embedding->size() * sizeof(float),
                            cudaMemcpyDeviceToHost, stream_.get()),
            "cudaMemcpyAsync (embedding)", file_);
    }
    check(cudaStreamSynchronize(stream_.get()), "cudaStreamSynchronize", file_);  // host vectors go out of scope below
    return logits;
  }

 private:
  void expect(const std::string& name, nvinfer1::TensorIOMode mode) const {
    if (engine_->getTensorIOMode(name.c_str()) != mode) {
      throw BackendError(file_ + ": engine has no " + (mode == nvinfer1::TensorIOMode::kINPUT ? "input" : "output") +
                         " tensor '" + name + "' (the manifest's I/O names)");
    }
  }

  void require_type(const std::string& name, std::initializer_list<nvinfer1::DataType> allowed) const {
    const nvinfer1::DataType type = engine_->getTensorDataType(name.c_str());
    if (std::find(allowed.begin(), allowed.end(), type) == allowed.end())
      throw BackendError(file_ + ": engine tensor '" + name + "' has data type " + std::to_string(static_cast<int>(type)) +
                         ", which this runtime does not feed");
  }

  std::string file_, waveform_, lengths_, output_;
  std::size_t num_samples_, num_labels_, embedding_dim_;  // embedding_dim_: 0 for an engine without one
  int device_;
  Logger logger_;  // declared before the TensorRT objects: it must outlive them
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  bool lengths_int32_ = false;
  std::int64_t min_batch_ = 1, max_batch_ = 0;
  Stream stream_;  // after the TensorRT objects: destroyed before them
  DeviceBuffer d_waveform_, d_lengths_, d_logits_, d_embedding_;
};

}  // namespace

std::unique_ptr<Backend> open_tensorrt(const BackendConfig& config) { return std::make_unique<TensorRTBackend>(config); }

}  // namespace ast::detail
