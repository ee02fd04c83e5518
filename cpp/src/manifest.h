// manifest.json of an artifact directory: the subset the C++ runtime needs.
// Schema: ast_deploy/export/manifest.py (format "ast-deploy-artifacts", format_version 1).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ast::detail {

struct Artifact {
  std::string name;       // "torchscript", "aoti", "aoti-int8", "tensorrt", "onnx", ...
  std::string format;     // what runs it: "torchscript", "aoti", "tensorrt", "onnx" (several names, one format)
  std::string file;       // relative to the artifact directory
  std::string sha256;     // lowercase hex
  std::string device;     // where it was compiled for ("cpu", "cuda"); "" when not recorded
  std::string precision;  // "fp32", "fp16", ...
};

struct Manifest {
  std::string dir;   // the artifact directory, as given
  std::string path;  // dir/manifest.json
  std::vector<std::string> labels;
  std::string activation;  // "sigmoid" | "softmax"
  std::string input_kind;  // always "waveform" once read (others are refused)
  int sample_rate = 0;
  std::size_t num_samples = 0;   // samples per window: the graph's fixed input length
  std::size_t frame_samples = 0; // one analysis frame (shorter audio has no features at all)
  std::size_t min_batch = 1, opt_batch = 1, max_batch = 1;
  std::vector<std::string> input_names;  // ["waveform", "num_samples"]
  std::string output_name;               // "logits"
  std::vector<Artifact> artifacts;

  // The artifact called `name`; ManifestError listing the available ones otherwise.
  const Artifact& artifact(const std::string& name) const;
  // dir/artifact.file after checking that it exists and (when `check_hash`) that its sha256 is the
  // manifest's; IntegrityError otherwise.
  std::string verify(const Artifact& artifact, bool check_hash) const;
};

// Reads and validates DIR/manifest.json; ManifestError naming the file and the problem.
Manifest read_manifest(const std::string& dir);

// Lowercase hex SHA-256 of a file's bytes (FIPS 180-4); IntegrityError if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ast::detail
