// ast::StreamingClassifier: the window rule of ast/windows.h (docs/streaming.md, section 3), applied
// as samples arrive; the twin of ast_deploy/streaming.py's AudioStream.
//
// A push enqueues every regular window (0, H, 2H, ...) the samples received so far hold whole;
// flush() adds the closing window (end-aligned, or the single short one). Enqueued windows are scored
// a batch at a time by Classifier::scores: at once when eager (live), only full batches until flush()
// when not (offline: Classifier::predict runs this stream, as Python's predict does).
#include "ast/streaming.h"

#include <algorithm>
#include <cmath>

#include "ast/windows.h"
#include "text.h"

namespace ast {

using detail::format;

struct StreamingClassifier::Impl {
  using Span = std::pair<std::size_t, std::size_t>;  // [start, end) in stream samples

  Classifier* classifier = nullptr;
  std::string where;
  int rate = 0;
  std::size_t model_window = 0, frame = 0, window = 0, hop = 0, batch = 1;
  bool eager = true;
  std::vector<float> buf;      // buf[buf_off] is stream sample buf_start
  std::size_t buf_off = 0, buf_start = 0;
  std::size_t received = 0;    // N
  std::size_t regular = 0;     // k: regular windows (k*H) enqueued
  std::vector<Span> pending;   // enqueued, not yet scored (empty after every push when eager)
  std::size_t emitted = 0;
  int channels = 0;            // 0 until the first chunk
  bool closed = false;

  template <typename T>
  std::vector<StreamWindow> push(const T* samples, std::size_t frames, int chunk_channels, float scale);
  std::vector<StreamWindow> flush();

  void enqueue_regular() {
    const std::size_t now = regular_window_count(received, window, hop);  // never fewer than before
    for (std::size_t k = regular; k < now; ++k) pending.emplace_back(k * hop, k * hop + window);
    regular = now;
  }

  // Scores what is pending: every batch when eager or at the end, else full batches only.
  std::vector<StreamWindow> advance(bool final) {
    enqueue_regular();
    std::vector<StreamWindow> out;
    std::size_t first = 0;
    while (pending.size() - first >= batch || (first < pending.size() && (eager || final))) {
      const std::size_t rows = std::min(batch, pending.size() - first);
      const std::vector<Span> spans(pending.begin() + static_cast<std::ptrdiff_t>(first),
                                    pending.begin() + static_cast<std::ptrdiff_t>(first + rows));
      for (StreamWindow& w : score(spans, padded_size(rows))) out.push_back(std::move(w));
      first += rows;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(first));
    trim();
    return out;
  }

  // The batch size to run `rows` windows at. Offline, on a backend that compiles one shape per batch
  // size (OpenVINO), a last partial batch after full ones runs padded to the full batch already run
  // (a few wasted windows instead of a compilation); a signal shorter than one batch and live
  // streams (latency) run their own size.
  std::size_t padded_size(std::size_t rows) const {
    if (eager || emitted == 0 || !classifier->static_batch_shapes()) return rows;
    return batch;
  }

  std::vector<StreamWindow> score(const std::vector<Span>& spans, std::size_t pad_to) {
    // Rows of the model's window, zero padded after each valid part (a window shorter than the
    // model's is fed as a short clip is).
    std::vector<float> rows(spans.size() * model_window, 0.0f);
    std::vector<std::int64_t> lengths(spans.size());
    for (std::size_t r = 0; r < spans.size(); ++r) {
      const auto [start, end] = spans[r];
      const float* from = buf.data() + buf_off + (start - buf_start);
      std::copy(from, from + (end - start), rows.begin() + static_cast<std::ptrdiff_t>(r * model_window));
      lengths[r] = static_cast<std::int64_t>(end - start);
    }
    std::vector<float> embeddings;  // filled with Options::embeddings only
    const std::vector<float> scores = classifier->scores(std::move(rows), std::move(lengths), pad_to, &embeddings);
    const std::size_t labels_n = scores.size() / spans.size();
    const std::size_t dim = embeddings.size() / spans.size();
    std::vector<StreamWindow> out;
    out.reserve(spans.size());
    for (std::size_t r = 0; r < spans.size(); ++r) {
      StreamWindow w;
      w.index = emitted++;
      w.start_sample = spans[r].first;
      w.end_sample = spans[r].second;
      w.sample_rate = rate;
      w.scores.assign(scores.begin() + static_cast<std::ptrdiff_t>(r * labels_n),
                      scores.begin() + static_cast<std::ptrdiff_t>((r + 1) * labels_n));
      if (dim > 0)
        w.embedding.assign(embeddings.begin() + static_cast<std::ptrdiff_t>(r * dim),
                           embeddings.begin() + static_cast<std::ptrdiff_t>((r + 1) * dim));
      out.push_back(std::move(w));
    }
    return out;
  }

  void trim() {
    // Keep what a future window may need: from the next regular window's start and the first
    // pending window's, and always the last W samples (the end-aligned window of flush()).
    std::size_t keep = received >= window ? std::min(regular * hop, received - window) : 0;
    if (!pending.empty()) keep = std::min(keep, pending.front().first);
    if (keep <= buf_start) return;
    buf_off += keep - buf_start;
    buf_start = keep;
    // Drop the dead prefix once it is as long as what is kept: amortised O(1) per sample, and the
    // vector never holds more than twice the live samples plus one chunk.
    if (buf_off >= buf.size() - buf_off) {
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(buf_off));
      buf_off = 0;
    }
  }
};

StreamingClassifier::StreamingClassifier(Classifier& classifier, StreamOptions options, std::string where)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.classifier = &classifier;
  m.where = std::move(where);
  m.rate = classifier.sample_rate();
  m.model_window = classifier.window_samples();
  m.frame = classifier.frame_samples();
  m.eager = options.eager;
  if (!std::isfinite(options.window_seconds) || options.window_seconds < 0)
    throw Error("window must be positive, got " + format("%g", options.window_seconds));
  m.window = options.window_seconds > 0 ? seconds_to_samples(options.window_seconds, m.rate) : m.model_window;
  if (m.window < m.frame || m.window > m.model_window) {
    throw Error("window must be between one " + format("%g", m.frame * 1000.0 / m.rate) +
                " ms frame and the model's window (" + format("%g", static_cast<double>(m.model_window) / m.rate) +
                " s), got " + format("%g", static_cast<double>(m.window) / m.rate) + " s");
  }
  m.hop = hop_length(options.hop_seconds, m.rate, m.window);
  if (options.batch_size < 1) throw Error("batch size must be positive, got 0");
  m.batch = std::max<std::size_t>(1, std::min(options.batch_size, classifier.max_batch()));
}

StreamingClassifier::~StreamingClassifier() = default;
StreamingClassifier::StreamingClassifier(StreamingClassifier&&) noexcept = default;
StreamingClassifier& StreamingClassifier::operator=(StreamingClassifier&&) noexcept = default;

template <typename T>
std::vector<StreamWindow> StreamingClassifier::Impl::push(const T* samples, std::size_t frames, int chunk_channels,
                                                          float scale) {
  if (closed) throw AudioError(where + ": the stream was flushed; no more audio can be pushed");
  if (chunk_channels < 1)
    throw AudioError(where + ": a chunk needs at least one channel, got " + std::to_string(chunk_channels));
  if (channels == 0) {
    channels = chunk_channels;
  } else if (chunk_channels != channels) {
    throw AudioError(where + ": chunk has " + std::to_string(chunk_channels) + " channel(s), the stream has " +
                     std::to_string(channels) + " (at sample " + std::to_string(received) + ")");
  }
  // Mono float32 as the Python input stage makes it: scale each sample to float32, then the
  // float32 mean over the channels (sum, then one division). A chunk with a bad sample is
  // refused whole, before anything is appended.
  const std::size_t old_size = buf.size();
  buf.resize(old_size + frames);
  float* out = buf.data() + old_size;
  const auto c = static_cast<std::size_t>(chunk_channels);
  for (std::size_t i = 0; i < frames; ++i) {
    const T* frame_samples = samples + i * c;
    float x = static_cast<float>(frame_samples[0]) * scale;
    if (c > 1) {
      for (std::size_t j = 1; j < c; ++j) x += static_cast<float>(frame_samples[j]) * scale;
      x /= static_cast<float>(c);
    }
    if (!std::isfinite(x)) {
      buf.resize(old_size);
      throw AudioError(where + ": audio contains NaN or infinite samples (first at sample " +
                       std::to_string(received + i) + ")");
    }
    out[i] = x;
  }
  received += frames;
  return advance(false);
}

std::vector<StreamWindow> StreamingClassifier::Impl::flush() {
  if (closed) throw AudioError(where + ": the stream was flushed; no more audio can be pushed");
  closed = true;
  check_audio_length(received, frame, rate, where);
  enqueue_regular();
  if (const auto last = closing_window(received, window, hop))  // end-aligned, or the one short window
    pending.emplace_back(*last, window_end(*last, window, received));
  std::vector<StreamWindow> out = advance(true);
  std::vector<float>().swap(buf);  // closed: nothing more is needed
  buf_off = 0;
  buf_start = received;
  return out;
}

std::vector<StreamWindow> StreamingClassifier::push(const float* samples, std::size_t frames, int channels) {
  return impl_->push(samples, frames, channels, 1.0f);
}

std::vector<StreamWindow> StreamingClassifier::push(const std::int16_t* samples, std::size_t frames, int channels) {
  return impl_->push(samples, frames, channels, 1.0f / 32768.0f);  // exact: a power of two
}

std::vector<StreamWindow> StreamingClassifier::flush() { return impl_->flush(); }

int StreamingClassifier::sample_rate() const { return impl_->rate; }
std::size_t StreamingClassifier::window() const { return impl_->window; }
std::size_t StreamingClassifier::hop() const { return impl_->hop; }
std::size_t StreamingClassifier::batch_size() const { return impl_->batch; }
std::size_t StreamingClassifier::num_samples() const { return impl_->received; }
double StreamingClassifier::duration() const { return static_cast<double>(impl_->received) / impl_->rate; }
std::size_t StreamingClassifier::windows() const { return impl_->emitted; }
std::size_t StreamingClassifier::buffered() const { return impl_->received - impl_->buf_start; }
bool StreamingClassifier::closed() const { return impl_->closed; }

}  // namespace ast
