// manifest.json reader: the same checks as ast_deploy/export/manifest.py::read_manifest, plus the
// input spec the C++ runtime relies on. Messages start with the file they are about.
#include "manifest.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ast/classifier.h"

namespace ast::detail {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kManifest = "manifest.json";
constexpr const char* kFormat = "ast-deploy-artifacts";
constexpr int kFormatVersion = 2;        // what ast-deploy export writes: "files" per artifact
constexpr int kOldestFormatVersion = 1;  // still read: one "file", "sha256", "bytes" per artifact

// Typed access to a dotted path ("input.batch.max") with errors that name the field.
class Reader {
 public:
  Reader(const json& root, std::string path) : root_(root), path_(std::move(path)) {}

  const json& node(const std::string& dotted) const {
    const json* j = &root_;
    std::size_t begin = 0;
    while (begin <= dotted.size()) {
      std::size_t end = dotted.find('.', begin);
      if (end == std::string::npos) end = dotted.size();
      const std::string key = dotted.substr(begin, end - begin);
      if (!j->is_object() || !j->contains(key)) fail("lacks " + dotted);
      j = &j->at(key);
      begin = end + 1;
    }
    return *j;
  }

  std::string str(const std::string& dotted) const {
    const json& j = node(dotted);
    if (!j.is_string()) fail(dotted + " is not a string");
    return j.get<std::string>();
  }

  long long integer(const std::string& dotted, long long min_value) const {
    const json& j = node(dotted);
    if (!j.is_number_integer()) fail(dotted + " is not an integer");
    const long long v = j.get<long long>();
    if (v < min_value) fail(dotted + " is " + std::to_string(v) + ", expected at least " + std::to_string(min_value));
    return v;
  }

  std::vector<std::string> strings(const std::string& dotted) const {
    const json& j = node(dotted);
    if (!j.is_array()) fail(dotted + " is not a list");
    std::vector<std::string> out;
    for (const json& item : j) {
      if (!item.is_string()) fail(dotted + " holds a non-string entry");
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  [[noreturn]] void fail(const std::string& what) const { throw ManifestError(path_ + ": manifest " + what); }

 private:
  const json& root_;
  std::string path_;
};

// A file entry's "bytes" (recorded by the exporter, informational); -1 when absent.
long long optional_bytes(const json& entry) {
  if (!entry.is_object() || !entry.contains("bytes") || !entry["bytes"].is_number_integer()) return -1;
  return entry["bytes"].get<long long>();
}

// A manifest's list of {file, sha256[, bytes]} (an artifact's files, the stored thresholds); `where`
// ("artifacts[2] (onnx) ", "thresholds ") starts the error naming an entry that lacks file or sha256.
std::vector<ArtifactFile> read_files(const json& files, const Reader& r, const std::string& path, const std::string& where) {
  std::vector<ArtifactFile> out;
  for (std::size_t j = 0; j < files.size(); ++j) {
    const Reader e(files[j], path);
    ArtifactFile f;
    try {
      f.file = e.str("file");
      f.sha256 = e.str("sha256");
    } catch (const ManifestError&) {
      r.fail(where + "files[" + std::to_string(j) + "] lacks file or sha256");
    }
    f.bytes = optional_bytes(files[j]);
    out.push_back(std::move(f));
  }
  return out;
}

// input.window_samples and input.frame_samples; for a manifest written before they were recorded,
// derived as ast_deploy/windows.py does: window_length() of a waveform graph is its fixed input
// length, frame_samples() is FrontEndConfig.window_size = int(rate * frame_length_ms / 1000).
void read_window_sizes(const json& input, const Reader& r, Manifest& m) {
  m.window_samples = input.contains("window_samples") ? static_cast<std::size_t>(r.integer("input.window_samples", 1))
                                                      : m.num_samples;
  if (input.contains("frame_samples")) {
    m.frame_samples = static_cast<std::size_t>(r.integer("input.frame_samples", 1));
    return;
  }
  double rate = m.sample_rate, frame_ms = 25.0;  // FrontEndConfig's defaults where the front end says nothing
  if (input.contains("frontend") && input["frontend"].is_object()) {
    const json& frontend = input["frontend"];
    for (auto [key, value] : {std::pair<const char*, double*>{"sample_rate", &rate}, {"frame_length_ms", &frame_ms}}) {
      if (!frontend.contains(key)) continue;
      if (!frontend[key].is_number()) r.fail(std::string("input.frontend.") + key + " is not a number");
      *value = frontend[key].get<double>();
    }
  }
  m.frame_samples = static_cast<std::size_t>(rate * frame_ms / 1000.0);
}

// "outputs" (names in order, logits first) and, where "embedding" is among them, "embedding.dim"; a manifest
// written before embeddings has neither: its graphs answer logits alone (as ast_deploy.export.manifest reads it).
void read_outputs(const json& root, const Reader& r, Manifest& m) {
  m.outputs = {m.output_name};
  if (!root.contains("outputs") || root["outputs"].is_null()) return;
  const json& outputs = root["outputs"];
  if (!outputs.is_array() || outputs.empty()) r.fail("outputs is not a list of named outputs");
  m.outputs.clear();
  for (std::size_t j = 0; j < outputs.size(); ++j) {
    if (!outputs[j].is_object() || !outputs[j].contains("name") || !outputs[j]["name"].is_string())
      r.fail("outputs[" + std::to_string(j) + "] lacks a name");
    m.outputs.push_back(outputs[j]["name"].get<std::string>());
  }
  if (m.outputs.front() != m.output_name)
    r.fail("outputs start with '" + m.outputs.front() + "', not '" + m.output_name + "'");
  for (const std::string& name : m.outputs)
    if (name == kEmbeddingOutput) m.embedding_dim = static_cast<std::size_t>(r.integer("embedding.dim", 1));
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

Manifest read_manifest(const std::string& dir) {
  Manifest m;
  m.dir = dir;
  m.path = (fs::path(dir) / kManifest).string();
  if (!fs::is_directory(dir)) throw ManifestError(dir + ": no such directory (expected an artifact directory written by 'ast-deploy export')");
  if (!fs::is_regular_file(m.path))
    throw ManifestError(dir + ": no " + std::string(kManifest) + " (not an artifact directory written by 'ast-deploy export')");

  json root;
  {
    std::ifstream in(m.path, std::ios::binary);
    if (!in) throw ManifestError(m.path + ": cannot open the manifest");
    try {
      root = json::parse(in);
    } catch (const json::parse_error& e) {
      throw ManifestError(m.path + ": unreadable manifest (" + e.what() + ")");
    }
  }
  if (!root.is_object()) throw ManifestError(m.path + ": manifest is not a JSON object");
  const Reader r(root, m.path);
  for (const char* key : {"format", "format_version", "model", "labels", "activation", "input", "artifacts"}) {
    if (!root.contains(key)) r.fail(std::string("lacks ") + key);
  }
  const bool known_format = root["format"].is_string() && root["format"] == kFormat;
  const json& version_node = root["format_version"];
  const long long version = version_node.is_number_integer() ? version_node.get<long long>() : -1;
  if (!known_format || version < kOldestFormatVersion || version > kFormatVersion) {
    std::string readable;
    for (int v = kOldestFormatVersion; v <= kFormatVersion; ++v)
      readable += (readable.empty() ? "v" : " or v") + std::to_string(v);
    throw ManifestError(m.path + ": format '" + root["format"].dump() + "' v" + version_node.dump() +
                        " is not '" + kFormat + "' " + readable);
  }

  m.labels = r.strings("labels");
  const long long num_labels = r.integer("model.num_labels", 1);
  if (static_cast<long long>(m.labels.size()) != num_labels)
    r.fail("has " + std::to_string(m.labels.size()) + " labels for " + std::to_string(num_labels) + " outputs");
  m.activation = r.str("activation");
  if (m.activation != "sigmoid" && m.activation != "softmax")
    r.fail("activation '" + m.activation + "' is neither sigmoid nor softmax");

  // Only waveform graphs: fbank graphs need the Kaldi front end, which lives in Python.
  m.input_kind = r.str("input.kind");
  if (m.input_kind != "waveform")
    throw ManifestError(m.path + ": input kind '" + m.input_kind +
                        "' is not supported by the C++ runtime, which feeds raw audio (re-export with --input waveform)");
  m.sample_rate = static_cast<int>(r.integer("input.sample_rate", 1));
  m.num_samples = static_cast<std::size_t>(r.integer("input.num_samples", 1));
  m.min_batch = static_cast<std::size_t>(r.integer("input.batch.min", 1));
  m.opt_batch = static_cast<std::size_t>(r.integer("input.batch.opt", 1));
  m.max_batch = static_cast<std::size_t>(r.integer("input.batch.max", 1));
  if (m.max_batch < m.min_batch) r.fail("input.batch.max is below input.batch.min");
  m.input_names = r.strings("input.names");
  if (m.input_names.size() != 2)
    r.fail("input.names lists " + std::to_string(m.input_names.size()) + " inputs; a waveform graph takes 2 (waveform, num_samples)");
  m.output_name = r.str("input.output");
  read_outputs(root, r, m);

  read_window_sizes(root["input"], r, m);
  if (m.window_samples != m.num_samples)
    r.fail("input.window_samples " + std::to_string(m.window_samples) + " differs from input.num_samples " +
           std::to_string(m.num_samples) + " (a waveform graph's window is its input)");

  const json& artifacts = r.node("artifacts");
  if (!artifacts.is_array()) r.fail("artifacts is not a list");
  for (std::size_t i = 0; i < artifacts.size(); ++i) {
    const Reader a(artifacts[i], m.path);
    Artifact art;
    const std::string where = "artifacts[" + std::to_string(i) + "]";
    if (version == 1) {  // one file: "file", "sha256", "bytes" on the artifact itself
      ArtifactFile f;
      try {
        art.name = a.str("name");
        art.format = a.str("format");
        f.file = a.str("file");
        f.sha256 = a.str("sha256");
      } catch (const ManifestError&) {
        r.fail(where + " lacks name, format, file or sha256");
      }
      f.bytes = optional_bytes(artifacts[i]);
      art.files.push_back(std::move(f));
    } else {  // "files": [{"file", "sha256", "bytes"}, ...], the primary file first
      try {
        art.name = a.str("name");
        art.format = a.str("format");
        a.node("files");
      } catch (const ManifestError&) {
        r.fail(where + " lacks name, format or files");
      }
      const json& files = artifacts[i]["files"];
      if (!files.is_array() || files.empty()) r.fail(where + " (" + art.name + ") lists no files");
      art.files = read_files(files, r, m.path, where + " (" + art.name + ") ");
    }
    if (artifacts[i].contains("device") && artifacts[i]["device"].is_string()) art.device = artifacts[i]["device"];
    if (artifacts[i].contains("precision") && artifacts[i]["precision"].is_string())
      art.precision = artifacts[i]["precision"];
    if (artifacts[i].contains("cpu_isa") && artifacts[i]["cpu_isa"].is_string()) art.cpu_isa = artifacts[i]["cpu_isa"];
    m.artifacts.push_back(std::move(art));
  }

  // Optional: the thresholds stored by 'ast-deploy thresholds --store' (null or absent: none).
  if (root.contains("thresholds") && !root["thresholds"].is_null()) {
    const json& entry = root["thresholds"];
    if (!entry.is_object() || !entry.contains("files") || !entry["files"].is_array() || entry["files"].empty())
      r.fail("thresholds entry lacks files");
    m.thresholds = read_files(entry["files"], r, m.path, "thresholds ");
  }
  return m;
}

const Artifact& Manifest::artifact(const std::string& name) const {
  std::vector<std::string> have;
  for (const Artifact& a : artifacts) {
    if (a.name == name) return a;
    have.push_back(a.name);
  }
  throw ManifestError(dir + ": no artifact '" + name + "' in the manifest (have: " +
                      (have.empty() ? std::string("none") : join(have, ", ")) + ")");
}

namespace {

// Every file exists and (when `check_hash`) holds the bytes the manifest recorded.
void verify_files(const std::string& dir, const std::vector<ArtifactFile>& files, bool check_hash) {
  for (const ArtifactFile& f : files) {
    const std::string file = (fs::path(dir) / f.file).string();
    if (!fs::is_regular_file(file)) throw IntegrityError(file + ": listed in the manifest but missing");
    if (check_hash) {
      const std::string digest = sha256_file(file);
      if (digest != f.sha256) {
        throw IntegrityError(file + ": sha256 " + digest.substr(0, 12) + "... does not match the manifest (" +
                             f.sha256.substr(0, 12) + "...)");
      }
    }
  }
}

}  // namespace

std::string Manifest::verify(const Artifact& a, bool check_hash) const {
  verify_files(dir, a.files, check_hash);
  return (fs::path(dir) / a.primary().file).string();
}

std::string Manifest::verify_thresholds(bool check_hash) const {
  if (thresholds.empty()) return "";
  verify_files(dir, thresholds, check_hash);
  return (fs::path(dir) / thresholds.front().file).string();
}

}  // namespace ast::detail
