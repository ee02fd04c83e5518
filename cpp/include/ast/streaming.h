// ast-deploy C++ runtime: audio as it arrives, and sound events from per-window scores.
//
//     ast::Classifier clf("artifacts/", "torchscript");
//     ast::StreamingClassifier stream(clf, {/*hop_seconds=*/0.5});
//     for (each chunk of PCM at clf.sample_rate())            // any size, float or int16, interleaved
//       for (const ast::StreamWindow& w : stream.push(chunk.data(), frames, channels)) ...
//     for (const ast::StreamWindow& w : stream.flush()) ...   // end of input: the end-aligned window
//
//     ast::EventTracker events(clf.labels(), ast::EventConfig{}, stream.hop(), clf.sample_rate());
//     for (const ast::Event& e : events.update(w)) ...        // events final after this window
//     for (const ast::Event& e : events.flush()) ...
//
// The rules (which windows, when, what they score; how events are built) are those of
// docs/streaming.md, which the Python runtime (ast_deploy.streaming, ast_deploy.events) follows
// too: a stream fed a signal in chunks of any sizes gives the windows and scores of
// Classifier::predict with the same hop (predict() is this stream over the whole signal, as in
// Python). The C++ stream takes audio at the model's rate only (no resampling). Memory: the samples
// of one window plus one chunk, however long the stream. Where windows start: ast/windows.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ast/classifier.h"

namespace ast {

// --- the stream -------------------------------------------------------------------------------

struct StreamOptions {
  double hop_seconds = 0;     // seconds between window starts; 0: one window (no overlap)
  double window_seconds = 0;  // 0: the model's window; else shorter, down to one analysis frame
  std::size_t batch_size = 8; // windows per graph call when a chunk completes several; capped by max_batch()
  // true (live): every window is scored by the push that completes it. false (offline, what
  // Classifier::predict runs): windows wait for a full batch, so that a signal's batches are the
  // consecutive slices of its window list however it is pushed, and a last partial batch is padded
  // to the full size on backends that compile one shape per batch size (Python's eager=False).
  bool eager = true;
};

// One scored window: samples [start_sample, end_sample) of the stream.
struct StreamWindow {
  std::size_t index = 0;         // 0, 1, 2, ... in emission (= start) order
  std::size_t start_sample = 0;
  std::size_t end_sample = 0;    // min(start + window, samples received)
  int sample_rate = 0;
  std::vector<float> scores;     // per label: sigmoid or softmax of the logits (the model's activation)
  std::vector<float> embedding;  // the clip embedding, with Options::embeddings (ast/classifier.h); else empty

  double start() const { return static_cast<double>(start_sample) / sample_rate; }
  double end() const { return static_cast<double>(end_sample) / sample_rate; }
};

// Windows of window() samples every hop() samples of a signal that arrives in chunks, scored by a
// Classifier as soon as a chunk completes them (or, with eager = false, a batch of them). The
// classifier must outlive the stream, stay where it is (not moved from) and not be used by another
// thread meanwhile. Errors: ast::Error for bad options, ast::AudioError for bad samples (naming the
// stream-global sample index), a chunk after flush(), or too little audio.
class StreamingClassifier {
 public:
  // `where` names the stream in error messages ("stdin", a device, a file).
  explicit StreamingClassifier(Classifier& classifier, StreamOptions options = {}, std::string where = "stream");
  ~StreamingClassifier();
  StreamingClassifier(StreamingClassifier&&) noexcept;
  StreamingClassifier& operator=(StreamingClassifier&&) noexcept;
  StreamingClassifier(const StreamingClassifier&) = delete;
  StreamingClassifier& operator=(const StreamingClassifier&) = delete;

  // A chunk of `frames` interleaved frames of `channels` channels (averaged to mono) at
  // sample_rate(); the channel count is fixed by the first chunk. Returns the windows this chunk
  // completed, scored, in order (often none). int16 PCM is scaled by 1/32768.
  std::vector<StreamWindow> push(const float* samples, std::size_t frames, int channels = 1);
  std::vector<StreamWindow> push(const std::int16_t* samples, std::size_t frames, int channels = 1);
  std::vector<StreamWindow> push(const std::vector<float>& mono) { return push(mono.data(), mono.size(), 1); }

  // End of input, the way offline prediction ends a file: the window aligned to the end of the
  // audio when some is left over (or the one zero-padded window of a signal shorter than a
  // window). The stream is closed afterwards, also when this throws (no samples, or shorter than
  // one analysis frame).
  std::vector<StreamWindow> flush();

  int sample_rate() const;
  std::size_t window() const;       // W, samples
  std::size_t hop() const;          // H, samples
  std::size_t batch_size() const;
  std::size_t num_samples() const;  // N, mono samples received so far
  double duration() const;
  std::size_t windows() const;      // windows returned so far
  // Samples held now: at most W + one chunk (eager), plus the windows of one partial batch (not eager).
  std::size_t buffered() const;
  bool closed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --- sound events -----------------------------------------------------------------------------

struct Event {
  std::string label;
  std::size_t index = 0;  // label index
  double onset = 0;       // seconds
  double offset = 0;      // seconds
  double peak = 0;        // the label's highest score over the event's windows
};

struct EventConfig {
  double threshold = 0.5;                // on threshold of every label
  std::optional<double> off_threshold;   // hysteresis: off threshold of every label (default: the on threshold)
  std::map<std::size_t, std::pair<double, double>> thresholds;  // label index -> (on, off) for some labels
  double min_duration = 0;               // seconds: shorter (merged) events are dropped
  double merge_gap = 0;                  // seconds: events of a label this close are merged
};

// Rows `label,on[,off]` of a CSV file -> {label index: (on, off)}. A label is its display name, or
// an integer index when no label has that name; blank lines and lines starting with '#' are
// skipped, as is a header row whose first field is "label"; a row without `off` uses
// min(on, off_threshold) when that is given, else on. Throws ast::Error naming the file and line.
std::map<std::size_t, std::pair<double, double>> read_thresholds(const std::string& path,
                                                                 const std::vector<std::string>& labels,
                                                                 std::optional<double> off_threshold = std::nullopt);

// Events window by window (docs/streaming.md, section 4): runs of windows with a label active
// under hysteresis, merged across gaps <= merge_gap, dropped when shorter than min_duration. A
// window stands for [centre - hop/2, centre + hop/2] clipped to itself. update() returns the
// events that became final with this window (labels in index order), flush() the rest.
class EventTracker {
 public:
  EventTracker(std::vector<std::string> labels, const EventConfig& config, std::size_t hop, int sample_rate);
  ~EventTracker();
  EventTracker(EventTracker&&) noexcept;
  EventTracker& operator=(EventTracker&&) noexcept;
  EventTracker(const EventTracker&) = delete;
  EventTracker& operator=(const EventTracker&) = delete;

  std::vector<Event> update(std::size_t start_sample, std::size_t end_sample, const std::vector<float>& scores);
  std::vector<Event> update(const StreamWindow& w) { return update(w.start_sample, w.end_sample, w.scores); }
  std::vector<Event> flush();

  double on_threshold(std::size_t label) const;
  double off_threshold(std::size_t label) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ast
