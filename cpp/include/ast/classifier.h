// ast-deploy C++ runtime: classify audio with an artifact directory written by `ast-deploy export`.
//
// The one public header. It includes no libtorch, TensorRT or JSON headers, so an application
// that embeds the classifier compiles against the standard library only; the backends live in
// the library.
//
//     ast::Classifier clf("artifacts/", "torchscript");
//     ast::Audio audio = ast::read_wav("clip.wav");          // mono float32, rate as in the file
//     std::vector<ast::Score> top = clf.classify(audio, 5);  // sorted, best first
//
// Behaviour mirrors the Python runtime (`ast_deploy.pipeline`): audio longer than the model's
// window is cut into windows (hop = one window unless set; the last window ends exactly at the
// end of the audio; ast/windows.h), a shorter clip is one zero-padded window, and scores (sigmoid
// or softmax of the logits, per the manifest) are aggregated over windows by mean and max.
// predict() runs the stream of ast/streaming.h over the signal, as Python's predict does.
// With Options::embeddings, each window also gets its clip embedding (the classifier head's input: the
// final-norm [cls] and distillation tokens averaged; the manifest's "embedding"), from the same graph
// call, and Prediction::embedding() is their mean over windows.
//
// Errors are exceptions derived from ast::Error, each naming the file and the problem.
// A Classifier is not safe for concurrent use: give each thread its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ast {

// --- errors -----------------------------------------------------------------------------------

// Base class of every error the library raises on bad input or an unusable artifact.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// manifest.json missing, unreadable or not a waveform artifact directory; an artifact not listed.
class ManifestError : public Error {
 public:
  using Error::Error;
};

// An artifact file missing or whose sha256 differs from the manifest's.
class IntegrityError : public Error {
 public:
  using Error::Error;
};

// A WAV file that is unreadable, corrupt, empty or in an unsupported format; samples at the wrong
// rate, non-finite, or shorter than one analysis frame.
class AudioError : public Error {
 public:
  using Error::Error;
};

// A backend not compiled into this build, or one that fails to load or run its artifact.
class BackendError : public Error {
 public:
  using Error::Error;
};

// --- audio ------------------------------------------------------------------------------------

// Mono float32 samples, as `soundfile` reads them: PCM 8-bit (unsigned) -> (x - 128) / 128,
// 16-bit -> x / 2^15, 24-bit -> x / 2^23, 32-bit -> x / 2^31, IEEE float 32/64-bit as is;
// channels are averaged.
struct Audio {
  std::vector<float> samples;
  int sample_rate = 0;
  int channels = 1;      // channels in the file (before mixing down)
  std::string source;    // the path read, or a caller's label
};

// Reads a RIFF/WAVE file (PCM 8/16/24/32-bit, IEEE float 32/64-bit, WAVE_FORMAT_EXTENSIBLE).
// Throws AudioError naming the file for anything else, and for a file with no samples.
Audio read_wav(const std::string& path);

// --- results ----------------------------------------------------------------------------------

struct Score {
  std::size_t index = 0;  // label index (model output)
  std::string label;
  float score = 0;  // the ranking score: mean or max over windows (a window's own score in window_top)
  float mean = 0;   // mean over windows
  float max = 0;    // max over windows
};

enum class Aggregate { Mean, Max };

// Per-window scores of one signal, and the aggregates derived from them.
struct Prediction {
  std::string source;
  int sample_rate = 0;
  std::size_t num_samples = 0;              // of the signal
  std::size_t window = 0;                   // samples per window
  std::vector<std::size_t> starts;          // first sample of each window
  std::vector<std::vector<float>> scores;   // [window][label], after the activation
  std::shared_ptr<const std::vector<std::string>> labels;
  std::vector<std::vector<float>> embeddings;  // [window][dim]: clip embeddings with Options::embeddings, else empty

  double duration() const;  // seconds
  std::vector<std::size_t> ends() const;  // where each window ends (exclusive): min(start + window, num_samples)
  std::vector<float> mean_scores() const;
  std::vector<float> max_scores() const;
  // The file's clip embedding: the mean of its windows' (empty without embeddings).
  std::vector<float> embedding() const;
  // The k best labels by the aggregate (ties: lower index first), best first.
  std::vector<Score> top(std::size_t k, Aggregate aggregate = Aggregate::Mean) const;
  // The k best labels of window w; mean and max equal that window's score.
  std::vector<Score> window_top(std::size_t w, std::size_t k) const;
};

// The k best labels of one row of scores (ties: lower index first), best first; mean and max equal
// the score (what Prediction::window_top gives for one window).
std::vector<Score> rank(const std::vector<float>& scores, const std::vector<std::string>& labels, std::size_t k);

// --- the classifier ---------------------------------------------------------------------------

struct Options {
  std::size_t batch_size = 8;     // windows per graph call, capped by the manifest's batch.max
  double hop_seconds = 0;         // seconds between windows; 0: one window (no overlap)
  int threads = 0;                // intra-op threads (libtorch, OpenVINO); 0: the library's default
  std::string device = "cpu";     // libtorch backends: "cpu" or "cuda[:N]"; TensorRT: "cuda[:N]"; OpenVINO: "cpu"
  std::string inference_precision;  // OpenVINO: "f32" (also when empty) or "bf16" (CPUs with bf16)
  std::string cache_dir;          // OpenVINO: compiled-model cache directory (faster second load); "": none
  bool verify_sha256 = true;      // check each artifact's bytes against the manifest before loading
  // Also compute each window's clip embedding (Prediction::embeddings, StreamWindow::embedding). An artifact
  // exported before embeddings (logits only) is refused with a ManifestError when this is set.
  bool embeddings = false;
};

class Classifier {
 public:
  // Reads ARTIFACT_DIR/manifest.json, checks every file of the artifact named `backend`
  // ("torchscript", "aoti", "tensorrt", "openvino", ...) against its sha256 and loads it (its
  // primary file) with the backend of the artifact's format.
  explicit Classifier(const std::string& artifact_dir, const std::string& backend = "torchscript",
                      Options options = {});
  ~Classifier();
  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // Top-k labels of mono samples at sample_rate(), ranked by the mean over windows.
  std::vector<Score> classify(const std::vector<float>& samples, std::size_t top_k = 5);
  // The same for decoded audio; throws AudioError if its rate is not sample_rate() (no resampling).
  std::vector<Score> classify(const Audio& audio, std::size_t top_k = 5);

  // Per-window scores (the timeline), for callers that want more than the top-k.
  Prediction predict(const std::vector<float>& samples, const std::string& source = "<samples>");
  Prediction predict(const Audio& audio);

  // One graph call: `batch` rows of window_samples() samples (row-major, zero padded after each
  // row's valid length) and their valid lengths -> batch x labels().size() logits, row-major.
  std::vector<float> logits(const std::vector<float>& windows, const std::vector<std::int64_t>& lengths);
  // The same call followed by the activation: batch x labels().size() scores, row-major. The one
  // "score a batch of windows" step of ast::StreamingClassifier (ast/streaming.h), which predict()
  // runs. `pad_to`: run at a batch of at least that many rows (the last row repeated, its scores
  // dropped), as the artifact's minimum batch is.
  std::vector<float> scores(std::vector<float> windows, std::vector<std::int64_t> lengths, std::size_t pad_to = 1);
  // The same, and with Options::embeddings the same call's clip embeddings (batch x embedding_dim(),
  // row-major) into *embeddings (left empty without them).
  std::vector<float> scores(std::vector<float> windows, std::vector<std::int64_t> lengths, std::size_t pad_to,
                            std::vector<float>* embeddings);

  const std::vector<std::string>& labels() const;
  int sample_rate() const;
  std::size_t window_samples() const;   // samples per window (the graph's fixed input length; the manifest's)
  std::size_t frame_samples() const;    // one analysis frame (25 ms): the shortest audio it takes
  std::size_t max_batch() const;        // largest batch the artifact takes
  bool static_batch_shapes() const;     // the backend compiles one shape per batch size (OpenVINO)
  const std::string& activation() const;  // "sigmoid" or "softmax"
  const std::string& backend() const;
  const std::string& artifact_path() const;  // the artifact's primary file
  int threads() const;  // intra-op threads the backend runs with (0 where it does not apply)
  // Whether the artifact's graph has the clip embedding output (exported since embeddings), and its size (0: none).
  bool has_embedding() const;
  std::size_t embedding_dim() const;
  // The per-label thresholds CSV that the artifact directory carries ('ast-deploy thresholds --store':
  // listed and hashed in the manifest), for ast::read_thresholds (ast/streaming.h); "" when it carries
  // none. Its files are checked as the artifact's are (present; sha256 unless verify_sha256 is off):
  // IntegrityError naming the file otherwise. The default of `ast_classify --stream --events`.
  std::string default_thresholds() const;

  // Backends compiled into this build, e.g. {"torchscript", "aoti"}.
  static std::vector<std::string> available_backends();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ast
