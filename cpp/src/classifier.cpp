// ast::Classifier: manifest -> backend; batches, activation, aggregation, ranking. predict() runs
// the stream (streaming.cpp) over the signal, as ast_deploy/pipeline.py does, so that the C++ host
// prints what `ast-deploy predict --json` prints on the same artifact.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ast/classifier.h"
#include "ast/streaming.h"
#include "ast/windows.h"
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

}  // namespace

// --- Prediction -------------------------------------------------------------------------------

double Prediction::duration() const { return static_cast<double>(num_samples) / sample_rate; }

std::vector<std::size_t> Prediction::ends() const {
  std::vector<std::size_t> out;
  out.reserve(starts.size());
  for (std::size_t s : starts) out.push_back(window_end(s, window, num_samples));
  return out;
}

std::vector<float> Prediction::mean_scores() const {
  // float32 sums, then one division: what numpy's mean over axis 0 of a float32 array does.
  std::vector<float> out(labels->size(), 0.0f);
  for (const auto& row : scores)
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += row[i];
  for (float& v : out) v /= static_cast<float>(scores.size());
  return out;
}

std::vector<float> Prediction::embedding() const {
  // float32 sums, then one division, as mean_scores() (numpy's mean over axis 0 of float32 rows).
  if (embeddings.empty()) return {};
  std::vector<float> out(embeddings.front().size(), 0.0f);
  for (const auto& row : embeddings)
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += row[i];
  for (float& v : out) v /= static_cast<float>(embeddings.size());
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

  // One graph call on `batch` rows; rows are repeated up to the artifact's minimum batch (as the
  // Python runtime does for engines built for one), or up to `pad_to`, and their logits dropped again.
  // With `embedding`, the same call's clip embeddings (batch x embedding_dim) into it.
  std::vector<float> run(std::vector<float>& windows, std::vector<std::int64_t>& lengths, std::size_t batch,
                         std::size_t pad_to = 1, std::vector<float>* embedding = nullptr) {
    const std::size_t n = manifest.num_samples, labels_n = manifest.labels.size();
    const std::size_t padded = std::max({batch, manifest.min_batch, pad_to});
    for (std::size_t r = batch; r < padded; ++r) {
      windows.insert(windows.end(), windows.end() - static_cast<std::ptrdiff_t>(n), windows.end());
      lengths.push_back(lengths.back());
    }
    std::vector<float> logits = backend->run(windows.data(), lengths.data(), padded, embedding);
    if (logits.size() != padded * labels_n) {
      throw BackendError(file + ": backend returned " + std::to_string(logits.size()) + " logits for " +
                         std::to_string(padded) + " x " + std::to_string(labels_n));
    }
    logits.resize(batch * labels_n);
    if (embedding != nullptr) {
      if (embedding->size() != padded * manifest.embedding_dim)
        throw BackendError(file + ": backend returned " + std::to_string(embedding->size()) + " embedding values for " +
                           std::to_string(padded) + " x " + std::to_string(manifest.embedding_dim));
      embedding->resize(batch * manifest.embedding_dim);
    }
    return logits;
  }

  // run() and the activation, row by row: the scores of one batch of windows (predict and streams).
  std::vector<float> score(std::vector<float>& windows, std::vector<std::int64_t>& lengths, std::size_t batch,
                           std::size_t pad_to = 1, std::vector<float>* embedding = nullptr) {
    std::vector<float> out = run(windows, lengths, batch, pad_to, embedding);
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
  m.manifest = detail::read_manifest(artifact_dir);
  hop_length(m.options.hop_seconds, m.manifest.sample_rate, m.manifest.window_samples);  // refuse a bad hop now
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
  if (m.options.embeddings && !m.manifest.has_embedding())  // an artifact exported before embeddings: logits only
    throw ManifestError(artifact_dir + ": backend '" + backend + "' has no embedding output: its artifact was exported "
                        "before ast-deploy exported embeddings (logits only); re-export the checkpoint to get them");
  m.file = m.manifest.verify(artifact, m.options.verify_sha256);
  m.labels = std::make_shared<const std::vector<std::string>>(m.manifest.labels);
  m.backend = entry->open(BackendConfig{m.file, m.manifest, artifact, m.options});
}

Classifier::~Classifier() = default;
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;

Prediction Classifier::predict(const std::vector<float>& samples, const std::string& source) {
  // The offline stream: fed a block of about one batch of hops at a time (memory: one window, one
  // block and one batch besides the caller's samples), scoring full batches only until the end.
  StreamOptions offline;
  offline.hop_seconds = impl_->options.hop_seconds;
  offline.batch_size = std::max<std::size_t>(1, impl_->options.batch_size);  // 0: one window per call, as ever
  offline.eager = false;
  StreamingClassifier stream(*this, offline, source);
  Prediction p;
  p.source = source;
  p.sample_rate = sample_rate();
  p.window = stream.window();
  p.labels = impl_->labels;
  const auto take = [&p](std::vector<StreamWindow> windows) {
    for (StreamWindow& w : windows) {
      p.starts.push_back(w.start_sample);
      p.scores.push_back(std::move(w.scores));
      if (!w.embedding.empty()) p.embeddings.push_back(std::move(w.embedding));
    }
  };
  const std::size_t block = std::clamp<std::size_t>(stream.batch_size() * stream.hop(), 4096, 1 << 20);
  for (std::size_t at = 0; at < samples.size(); at += block)
    take(stream.push(samples.data() + at, std::min(block, samples.size() - at), 1));
  take(stream.flush());
  p.num_samples = stream.num_samples();
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

std::vector<float> Classifier::scores(std::vector<float> windows, std::vector<std::int64_t> lengths,
                                      std::size_t pad_to) {
  impl_->check_batch(windows, lengths);
  return impl_->score(windows, lengths, lengths.size(), pad_to);
}

std::vector<float> Classifier::scores(std::vector<float> windows, std::vector<std::int64_t> lengths,
                                      std::size_t pad_to, std::vector<float>* embeddings) {
  impl_->check_batch(windows, lengths);
  if (embeddings != nullptr) embeddings->clear();
  const bool wanted = embeddings != nullptr && impl_->options.embeddings;
  return impl_->score(windows, lengths, lengths.size(), pad_to, wanted ? embeddings : nullptr);
}

const std::vector<std::string>& Classifier::labels() const { return *impl_->labels; }
int Classifier::sample_rate() const { return impl_->manifest.sample_rate; }
std::size_t Classifier::window_samples() const { return impl_->manifest.window_samples; }
std::size_t Classifier::frame_samples() const { return impl_->manifest.frame_samples; }
std::size_t Classifier::max_batch() const { return impl_->manifest.max_batch; }
bool Classifier::static_batch_shapes() const { return impl_->backend->static_batch_shapes(); }
const std::string& Classifier::activation() const { return impl_->manifest.activation; }
const std::string& Classifier::backend() const { return impl_->backend_name; }
const std::string& Classifier::artifact_path() const { return impl_->file; }
int Classifier::threads() const { return impl_->backend->threads(); }
bool Classifier::has_embedding() const { return impl_->manifest.has_embedding(); }
std::size_t Classifier::embedding_dim() const { return impl_->manifest.embedding_dim; }
std::string Classifier::default_thresholds() const {
  return impl_->manifest.verify_thresholds(impl_->options.verify_sha256);
}

std::vector<std::string> Classifier::available_backends() {
  std::vector<std::string> out;
  for (const auto& e : backend_table())
    if (e.compiled) out.emplace_back(e.name);
  return out;
}

}  // namespace ast
