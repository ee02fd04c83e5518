// manifest.json of an artifact directory: the subset the C++ runtime needs.
// Schema: ast_deploy/export/manifest.py (format "ast-deploy-artifacts", format_version 2; version 1,
// one file per artifact, is read into the same structs).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ast::detail {

// The clip embedding's output name in every graph exported since embeddings (manifest "outputs"; the
// logits' name is read from the manifest's input.output).
inline constexpr const char* kEmbeddingOutput = "embedding";

struct ArtifactFile {
  std::string file;      // relative to the artifact directory
  std::string sha256;    // lowercase hex
  long long bytes = -1;  // size recorded by the exporter; -1 when not recorded
};

struct Artifact {
  std::string name;       // "torchscript", "aoti", "aoti-int8", "tensorrt", "onnx", ...
  std::string format;     // what runs it: "torchscript", "aoti", "tensorrt", "onnx" (several names, one format)
  std::vector<ArtifactFile> files;  // never empty; the first is the primary file, the one a backend opens
  std::string device;     // where it was compiled for ("cpu", "cuda"); "" when not recorded
  std::string precision;  // "fp32", "fp16", ...
  std::string cpu_isa;    // AOTInductor on the CPU: the vector ISA its code was compiled for ("avx2", "avx512 ..."); "" if not recorded

  const ArtifactFile& primary() const { return files.front(); }
};

struct Manifest {
  std::string dir;   // the artifact directory, as given
  std::string path;  // dir/manifest.json
  std::vector<std::string> labels;
  std::string activation;  // "sigmoid" | "softmax"
  std::string input_kind;  // always "waveform" once read (others are refused)
  int sample_rate = 0;
  std::size_t num_samples = 0;     // the graph's fixed input length (a waveform graph's clip)
  std::size_t window_samples = 0;  // samples per window (input.window_samples; for a waveform graph, num_samples)
  std::size_t frame_samples = 0;   // one analysis frame (input.frame_samples): shorter audio has no features at all
  std::size_t min_batch = 1, opt_batch = 1, max_batch = 1;
  std::vector<std::string> input_names;  // ["waveform", "num_samples"]
  std::string output_name;               // "logits"
  // "outputs": the graphs' outputs by tensor name, in order: {"logits", "embedding"} in a directory exported
  // since embeddings; {"logits"} for one written before (no "outputs" in its manifest).
  std::vector<std::string> outputs;
  std::size_t embedding_dim = 0;  // embedding.dim: floats per clip embedding (0 without an embedding output)
  bool has_embedding() const { return embedding_dim > 0; }
  std::vector<Artifact> artifacts;
  // "thresholds": {"files": [...]}, the per-label thresholds that 'ast-deploy thresholds --store' put
  // in the directory (ast_deploy/thresholds.py): the CSV first, then its report. Empty: none stored.
  std::vector<ArtifactFile> thresholds;

  // The artifact called `name`; ManifestError listing the available ones otherwise.
  const Artifact& artifact(const std::string& name) const;
  // dir/<primary file> after checking that every file of the artifact exists and (when
  // `check_hash`) that each one's sha256 is the manifest's; IntegrityError naming the file otherwise.
  std::string verify(const Artifact& artifact, bool check_hash) const;
  // dir/<the stored thresholds CSV> after the same checks of every thresholds file; "" when none.
  std::string verify_thresholds(bool check_hash) const;
};

// Reads and validates DIR/manifest.json; ManifestError naming the file and the problem. The window
// sizes are read from input.window_samples and input.frame_samples; a manifest written before they
// were recorded gets them derived from its graph and front end, by the rule of ast_deploy/windows.py.
Manifest read_manifest(const std::string& dir);

// Lowercase hex SHA-256 of a file's bytes (FIPS 180-4); IntegrityError if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ast::detail
