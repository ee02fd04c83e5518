// ast::Classifier: manifest -> backend; input checks, windows, batches, activation, ranking.
// The windowing and aggregation follow ast_deploy/pipeline.py line for line, so that the C++
// host prints what `ast-deploy predict --json` prints on the same artifact.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "ast/classifier.h"
#include "backend.h"
#include "manifest.h"

namespace ast {

using detail::Backend;
using detail::BackendConfig;

namespace {

// Every backend name the manifest may list, whether this build has it, and how to get it.
struct BackendEntry {
  const char* name;
  bool compiled;
  std::unique_ptr<Backend> (*open)(const BackendConfig&);
  const char* how;  // what to do when it is not compiled
};

#ifndef AST_WITH_TORCH
#define AST_WITH_TORCH 0
#endif
#ifndef AST_WITH_TENSORRT
#define AST_WITH_TENSORRT 0
#endif
#ifndef AST_WITH_OPENVINO
#define AST_WITH_OPENVINO 0
#endif

const std::vector<BackendEntry>& backend_table() {
  static const std::vector<BackendEntry> table = {
#if AST_WITH_TORCH
      {"torchscript", true, &detail::open_torchscript, ""},
      {"aoti", true, &detail::open_aoti, ""},
#else
      {"torchscript", false, nullptr, "configure with -DAST_WITH_TORCH=ON"},
      {"aoti", false, nullptr, "configure with -DAST_WITH_TORCH=ON"},
#endif
#if AST_WITH_TENSORRT
      {"tensorrt", true, &detail::open_tensorrt, ""},
#else
      {"tensorrt", false, nullptr, "configure with -DAST_WITH_TENSORRT=ON where TensorRT and CUDA are installed"},
#endif
#if AST_WITH_OPENVINO
      {"openvino", true, &detail::open_openvino, ""},
#else
      {"openvino", false, nullptr, "pip install openvino, then configure with -DAST_WITH_OPENVINO=ON"},
#endif
  };
  return table;
}

// numpy.argsort(-values, kind="stable")[:k]: best first, ties by lower index.
std::vector<std::size_t> best(const std::vector<float>& values, std::size_t k) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] > values[b]; });
  order.resize(std::min(k, order.size()));
  return order;
}

void activate(float* logits, std::size_t n, const std::string& activation) {
  if (activation == "sigmoid") {
    for (std::size_t i = 0; i < n; ++i) logits[i] = 1.0f / (1.0f + std::exp(-logits[i]));
    return;
  }
  const float peak = *std::max_element(logits, logits + n);  // softmax, shifted for range
  float sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += (logits[i] = std::exp(logits[i] - peak));
  for (std::size_t i = 0; i < n; ++i) logits[i] /= sum;
}

// printf-style formatting of one number ("%.1f", "%g"), as the Python messages format them.
std::string format(const char* spec, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, spec, value);
  return buf;
}

}  // namespace

// --- Prediction -------------------------------------------------------------------------------

double Prediction::duration() const { return static_cast<double>(num_samples) / sample_rate; }

std::vector<float> Prediction::mean_scores() const {
  // float32 sums, then one division: what numpy's mean over axis 0 of a float32 array does.
  std::vector<float> out(labels->size(), 0.0f);
  for (const auto& row : scores)
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += row[i];
  for (float& v : out) v /= static_cast<float>(scores.size());
  return out;
}

std::vector<float> Prediction::max_scores() const {
  std::vector<float> out(scores.front());
  for (const auto& row : scores)
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::max(out[i], row[i]);
  return out;
}

std::vector<Score> Prediction::top(std::size_t k, Aggregate aggregate) const {
  const std::vector<float> mean = mean_scores(), max = max_scores();
  const std::vector<float>& ranked = aggregate == Aggregate::Mean ? mean : max;
  std::vector<Score> out;
  for (std::size_t i : best(ranked, k)) out.push_back({i, (*labels)[i], ranked[i], mean[i], max[i]});
  return out;
}

std::vector<Score> Prediction::window_top(std::size_t w, std::size_t k) const { return rank(scores.at(w), *labels, k); }

std::vector<Score> rank(const std::vector<float>& scores, const std::vector<std::string>& labels, std::size_t k) {
  std::vector<Score> out;
  for (std::size_t i : best(scores, k)) out.push_back({i, labels.at(i), scores[i], scores[i], scores[i]});
  return out;
}

// --- Classifier -------------------------------------------------------------------------------

struct Classifier::Impl {
  detail::Manifest manifest;
  Options options;
  std::string backend_name;
  std::string file;
  std::unique_ptr<Backend> backend;
  std::shared_ptr<const std::vector<std::string>> labels;
  std::size_t hop = 0;
  std::size_t step = 1;  // windows per graph call

  // One graph call on `batch` rows; rows are repeated up to the artifact's minimum batch (as the
  // Python runtime does for engines built for one), or up to `pad_to`, and their logits dropped again.
  std::vector<float> run(std::vector<float>& windows, std::vector<std::int64_t>& lengths, std::size_t batch,
                         std::size_t pad_to = 1) {
    const std::size_t n = manifest.num_samples, labels_n = manifest.labels.size();
    const std::size_t padded = std::max({batch, manifest.min_batch, pad_to});
    for (std::size_t r = batch; r < padded; ++r) {
      windows.insert(windows.end(), windows.end() - static_cast<std::ptrdiff_t>(n), windows.end());
      lengths.push_back(lengths.back());
    }
    std::vector<float> logits = backend->run(windows.data(), lengths.data(), padded);
    if (logits.size() != padded * labels_n) {
      throw BackendError(file + ": backend returned " + std::to_string(logits.size()) + " logits for " +
                         std::to_string(padded) + " x " + std::to_string(labels_n));
    }
    logits.resize(batch * labels_n);
    return logits;
  }

  // run() and the activation, row by row: the scores of one batch of windows (predict and streams).
  std::vector<float> score(std::vector<float>& windows, std::vector<std::int64_t>& lengths, std::size_t batch,
                           std::size_t pad_to = 1) {
    std::vector<float> out = run(windows, lengths, batch, pad_to);
    const std::size_t labels_n = manifest.labels.size();
    for (std::size_t r = 0; r < batch; ++r) activate(out.data() + r * labels_n, labels_n, manifest.activation);
    return out;
  }

  // What the public logits()/scores() accept from a caller.
  void check_batch(const std::vector<float>& windows, const std::vector<std::int64_t>& lengths) const {
    const std::size_t batch = lengths.size(), n = manifest.num_samples;
    if (batch == 0 || batch > manifest.max_batch)
      throw Error("batch " + std::to_string(batch) + " outside the artifact's range 1.." + std::to_string(manifest.max_batch));
    if (windows.size() != batch * n)
      throw Error("expected " + std::to_string(batch) + " x " + std::to_string(n) + " samples, got " + std::to_string(windows.size()));
    for (std::int64_t len : lengths)
      if (len < 1 || len > static_cast<std::int64_t>(n)) throw Error("num_samples must lie in 1.." + std::to_string(n));
  }
};

Classifier::Classifier(const std::string& artifact_dir, const std::string& backend, Options options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = std::move(options);
  m.backend_name = backend;
  if (m.options.hop_seconds < 0) throw Error("hop must be positive, got " + std::to_string(m.options.hop_seconds));

  m.manifest = detail::read_manifest(artifact_dir);
  // The backend argument names an artifact; its format says which implementation runs it
  // (both "aoti" and "aoti-int8" are AOTInductor packages).
  const detail::Artifact& artifact = m.manifest.artifact(backend);
  const auto& table = backend_table();
  const auto entry =
      std::find_if(table.begin(), table.end(), [&](const BackendEntry& e) { return artifact.format == e.name; });
  if (entry == table.end()) {
    std::string known;
    for (const auto& e : table) known += (known.empty() ? "" : ", ") + std::string(e.name);
    throw BackendError("artifact '" + backend + "' has format '" + artifact.format + "', which the C++ runtime does not run (it runs " + known + ")");
  }
  if (!entry->compiled) throw BackendError("backend '" + artifact.format + "' is not compiled into this build (" + entry->how + ")");
  m.file = m.manifest.verify(artifact, m.options.verify_sha256);
  m.labels = std::make_shared<const std::vector<std::string>>(m.manifest.labels);
  m.hop = m.options.hop_seconds > 0
              ? static_cast<std::size_t>(std::max(1.0, std::nearbyint(m.options.hop_seconds * m.manifest.sample_rate)))
              : m.manifest.num_samples;
  m.step = std::max<std::size_t>(1, std::min(m.options.batch_size, m.manifest.max_batch));
  m.backend = entry->open(BackendConfig{m.file, m.manifest, artifact, m.options});
}

Classifier::~Classifier() = default;
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;

Prediction Classifier::predict(const std::vector<float>& samples, const std::string& source) {
  const Impl& m = *impl_;
  const int rate = m.manifest.sample_rate;
  if (samples.empty()) throw AudioError(source + ": audio has no samples");
  const auto bad = std::find_if(samples.begin(), samples.end(), [](float x) { return !std::isfinite(x); });
  if (bad != samples.end()) {
    throw AudioError(source + ": audio contains NaN or infinite samples (first at sample " +
                     std::to_string(bad - samples.begin()) + ")");
  }
  if (samples.size() < m.manifest.frame_samples) {
    throw AudioError(source + ": audio is " + format("%.1f", samples.size() * 1000.0 / rate) +
                     " ms long, shorter than one " + format("%g", m.manifest.frame_samples * 1000.0 / rate) +
                     " ms analysis frame");
  }

  // window_starts() of pipeline.py: hop apart, the last one ending exactly at the end.
  const std::size_t window = m.manifest.num_samples, total = samples.size();
  Prediction p;
  p.source = source;
  p.sample_rate = rate;
  p.num_samples = total;
  p.window = window;
  p.labels = m.labels;
  if (total <= window) {
    p.starts = {0};
  } else {
    for (std::size_t s = 0; s + window <= total; s += m.hop) p.starts.push_back(s);
    if (p.starts.back() + window < total) p.starts.push_back(total - window);
  }

  const std::size_t labels_n = m.labels->size();
  for (std::size_t first = 0; first < p.starts.size(); first += m.step) {
    const std::size_t batch = std::min(m.step, p.starts.size() - first);
    std::vector<float> windows(batch * window, 0.0f);  // zero padded after each valid part
    std::vector<std::int64_t> lengths(batch);
    for (std::size_t r = 0; r < batch; ++r) {
      const std::size_t s = p.starts[first + r], len = std::min(window, total - s);
      std::copy_n(samples.begin() + static_cast<std::ptrdiff_t>(s), len, windows.begin() + static_cast<std::ptrdiff_t>(r * window));
      lengths[r] = static_cast<std::int64_t>(len);
    }
    // The last partial batch of a file that ran full ones: padded on backends that compile per size.
    const std::size_t pad_to = first > 0 && impl_->backend->static_batch_shapes() ? m.step : 1;
    const std::vector<float> scores = impl_->score(windows, lengths, batch, pad_to);
    for (std::size_t r = 0; r < batch; ++r)
      p.scores.emplace_back(scores.begin() + static_cast<std::ptrdiff_t>(r * labels_n),
                            scores.begin() + static_cast<std::ptrdiff_t>((r + 1) * labels_n));
  }
  return p;
}

Prediction Classifier::predict(const Audio& audio) {
  const std::string source = audio.source.empty() ? "<audio>" : audio.source;
  if (audio.sample_rate != sample_rate()) {
    throw AudioError(source + ": sample rate " + std::to_string(audio.sample_rate) + " Hz, but the model takes " +
                     std::to_string(sample_rate()) + " Hz (the C++ runtime does not resample; convert the file first)");
  }
  return predict(audio.samples, source);
}

std::vector<Score> Classifier::classify(const std::vector<float>& samples, std::size_t top_k) {
  return predict(samples).top(top_k);
}

std::vector<Score> Classifier::classify(const Audio& audio, std::size_t top_k) { return predict(audio).top(top_k); }

std::vector<float> Classifier::logits(const std::vector<float>& windows, const std::vector<std::int64_t>& lengths) {
  impl_->check_batch(windows, lengths);
  std::vector<float> w(windows);
  std::vector<std::int64_t> l(lengths);
  return impl_->run(w, l, l.size());
}

std::vector<float> Classifier::scores(std::vector<float> windows, std::vector<std::int64_t> lengths) {
  impl_->check_batch(windows, lengths);
  return impl_->score(windows, lengths, lengths.size());
}

const std::vector<std::string>& Classifier::labels() const { return *impl_->labels; }
int Classifier::sample_rate() const { return impl_->manifest.sample_rate; }
std::size_t Classifier::window_samples() const { return impl_->manifest.num_samples; }
std::size_t Classifier::frame_samples() const { return impl_->manifest.frame_samples; }
std::size_t Classifier::max_batch() const { return impl_->manifest.max_batch; }
const std::string& Classifier::activation() const { return impl_->manifest.activation; }
const std::string& Classifier::backend() const { return impl_->backend_name; }
const std::string& Classifier::artifact_path() const { return impl_->file; }
int Classifier::threads() const { return impl_->backend->threads(); }

std::vector<std::string> Classifier::available_backends() {
  std::vector<std::string> out;
  for (const auto& e : backend_table())
    if (e.compiled) out.emplace_back(e.name);
  return out;
}

}  // namespace ast
