// What the two libtorch backends (TorchScript, AOTInductor) share: tensors over the caller's
// buffers, threads, device parsing, logits back to the host, and c10::Error -> BackendError.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "backend.h"

namespace ast::detail::torch_common {

// libtorch's intra-op threads are process-wide; set them once, when the caller asked.
inline void set_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

inline c10::Device parse_device(const std::string& name) {
  try {
    return c10::Device(name);
  } catch (const c10::Error&) {
    throw BackendError("device '" + name + "' is not a libtorch device (cpu, cuda, cuda:N)");
  }
}

// (waveform (B, N) float32, num_samples (B,) int64) on `device`. On the CPU the tensors alias the
// caller's buffers (no copy); the graphs only read them.
inline std::vector<at::Tensor> graph_inputs(const float* waveform, const std::int64_t* lengths, std::size_t batch,
                                            std::size_t num_samples, const c10::Device& device) {
  const auto b = static_cast<std::int64_t>(batch), n = static_cast<std::int64_t>(num_samples);
  at::Tensor x = at::from_blob(const_cast<float*>(waveform), {b, n}, at::kFloat);
  at::Tensor len = at::from_blob(const_cast<std::int64_t*>(lengths), {b}, at::kLong);
  if (!device.is_cpu()) x = x.to(device), len = len.to(device);
  return {std::move(x), std::move(len)};
}

// A graph output (`what`: "logits", "embedding") as batch x columns floats on the host, after checking its shape.
inline std::vector<float> host_output(const at::Tensor& output, std::size_t batch, std::size_t columns,
                                      const std::string& where, const char* what) {
  if (output.dim() != 2 || output.size(0) != static_cast<std::int64_t>(batch) ||
      output.size(1) != static_cast<std::int64_t>(columns)) {
    throw BackendError(where + ": graph returned " + what + " of shape " + c10::str(output.sizes()) + ", expected [" +
                       std::to_string(batch) + ", " + std::to_string(columns) + "]");
  }
  const at::Tensor host = output.to(at::kCPU, at::kFloat).contiguous();
  const float* p = host.data_ptr<float>();
  return std::vector<float>(p, p + host.numel());
}

// The outputs of a torch graph (TorchScript's IValue tuple, AOTInductor's tensor list): logits first, then,
// in graphs exported since embeddings, the embedding. Logits on the host; the embedding into *embedding
// when asked (the manifest lists it), else left alone.
inline std::vector<float> host_outputs(const std::vector<at::Tensor>& outputs, std::size_t batch, std::size_t labels,
                                       std::size_t embedding_dim, std::vector<float>* embedding,
                                       const std::string& where) {
  if (outputs.empty()) throw BackendError(where + ": graph returned no outputs");
  if (embedding != nullptr) {
    if (outputs.size() < 2) throw BackendError(where + ": graph returned no embedding output");
    *embedding = host_output(outputs[1], batch, embedding_dim, where, kEmbeddingOutput);
  }
  return host_output(outputs[0], batch, labels, where, "logits");
}

// c10::Error::what() carries a C++ backtrace; the message alone is what a user needs.
inline std::string message(const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

}  // namespace ast::detail::torch_common
