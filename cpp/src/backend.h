// The one small interface every backend implements; windowing, batching, activation and ranking
// live in classifier.cpp and are shared by all of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ast/classifier.h"
#include "manifest.h"

namespace ast::detail {

class Backend {
 public:
  virtual ~Backend() = default;

  // `batch` rows of spec().num_samples float32 samples (row-major) and their valid lengths
  // -> batch x num_labels float32 logits, row-major. With `embedding` (passed only where the manifest
  // lists the graph's "embedding" output), the same call's clip embeddings too: batch x embedding_dim
  // floats, row-major, into *embedding (fetched by output name, as the logits are; nullptr: not fetched).
  // The caller keeps batch within the manifest's range; errors are BackendError.
  virtual std::vector<float> run(const float* waveform, const std::int64_t* lengths, std::size_t batch,
                                 std::vector<float>* embedding) = 0;

  // Intra-op threads the backend computes with (0 where that is not the backend's business).
  virtual int threads() const { return 0; }

  // It compiles one static shape per batch size (OpenVINO): a file's last partial batch is then
  // padded to the batch size already run rather than compiled for (as the Python runtime does).
  virtual bool static_batch_shapes() const { return false; }
};

// What a backend factory gets: the verified artifact file and everything about its graph.
struct BackendConfig {
  std::string file;  // the artifact's primary file; every file's sha256 already checked
  const Manifest& manifest;
  const Artifact& artifact;
  const Options& options;
};

// One factory per backend file. A backend left out of the build throws BackendError instead
// (see classifier.cpp), so this list is the same in every build.
std::unique_ptr<Backend> open_torchscript(const BackendConfig& config);
std::unique_ptr<Backend> open_aoti(const BackendConfig& config);
std::unique_ptr<Backend> open_tensorrt(const BackendConfig& config);
std::unique_ptr<Backend> open_openvino(const BackendConfig& config);

}  // namespace ast::detail
