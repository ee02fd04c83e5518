// ast::StreamingClassifier: the windowing rule of docs/streaming.md (section 3), incrementally.
//
// The same rule as Classifier::predict's window starts (0, H, 2H, ... while s + W <= N, plus
// N - W when audio is left over; one window at 0 when N <= W), applied as samples arrive: a push
// emits every regular window it completed, flush() adds the end-aligned (or single short) window.
// Scoring is Classifier::scores, the call predict() makes too.
#include "ast/streaming.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ast {

namespace {

std::string format(const char* spec, double value) {
  char buf[48];
  std::snprintf(buf, sizeof buf, spec, value);
  return buf;
}

// Seconds -> samples: round half to even (Python's round, C's nearbyint in the default mode).
std::size_t to_samples(double seconds, int rate) {
  return static_cast<std::size_t>(std::max(1.0, std::nearbyint(seconds * rate)));
}

}  // namespace

StreamingClassifier::StreamingClassifier(Classifier& classifier, StreamOptions options, std::string where)
    : classifier_(&classifier), where_(std::move(where)) {
  rate_ = classifier.sample_rate();
  model_window_ = classifier.window_samples();
  frame_ = classifier.frame_samples();
  if (!std::isfinite(options.window_seconds) || options.window_seconds < 0)
    throw Error("window must be positive, got " + format("%g", options.window_seconds));
  window_ = options.window_seconds > 0 ? static_cast<std::size_t>(std::nearbyint(options.window_seconds * rate_))
                                       : model_window_;
  if (window_ < frame_ || window_ > model_window_) {
    throw Error("window must be between one " + format("%g", frame_ * 1000.0 / rate_) +
                " ms frame and the model's window (" + format("%g", static_cast<double>(model_window_) / rate_) +
                " s), got " + format("%g", static_cast<double>(window_) / rate_) + " s");
  }
  if (!std::isfinite(options.hop_seconds) || options.hop_seconds < 0)
    throw Error("hop must be positive, got " + format("%g", options.hop_seconds));
  hop_ = options.hop_seconds > 0 ? to_samples(options.hop_seconds, rate_) : window_;
  if (options.batch_size < 1) throw Error("batch size must be positive, got 0");
  batch_ = std::max<std::size_t>(1, std::min(options.batch_size, classifier.max_batch()));
}

template <typename T>
std::vector<StreamWindow> StreamingClassifier::push_frames(const T* samples, std::size_t frames, int channels,
                                                            float scale) {
  if (closed_) throw AudioError(where_ + ": the stream was flushed; no more audio can be pushed");
  if (channels < 1) throw AudioError(where_ + ": a chunk needs at least one channel, got " + std::to_string(channels));
  if (channels_ == 0) {
    channels_ = channels;
  } else if (channels != channels_) {
    throw AudioError(where_ + ": chunk has " + std::to_string(channels) + " channel(s), the stream has " +
                     std::to_string(channels_) + " (at sample " + std::to_string(received_) + ")");
  }
  // Mono float32 as the Python input stage makes it: scale each sample to float32, then the
  // float32 mean over the channels (sum, then one division). A chunk with a bad sample is
  // refused whole, before anything is appended.
  const std::size_t old_size = buf_.size();
  buf_.resize(old_size + frames);
  float* out = buf_.data() + old_size;
  const auto c = static_cast<std::size_t>(channels);
  for (std::size_t i = 0; i < frames; ++i) {
    const T* frame = samples + i * c;
    float x = static_cast<float>(frame[0]) * scale;
    if (c > 1) {
      for (std::size_t j = 1; j < c; ++j) x += static_cast<float>(frame[j]) * scale;
      x /= static_cast<float>(c);
    }
    if (!std::isfinite(x)) {
      buf_.resize(old_size);
      throw AudioError(where_ + ": audio contains NaN or infinite samples (first at sample " +
                       std::to_string(received_ + i) + ")");
    }
    out[i] = x;
  }
  received_ += frames;
  return advance();
}

std::vector<StreamWindow> StreamingClassifier::push(const float* samples, std::size_t frames, int channels) {
  return push_frames(samples, frames, channels, 1.0f);
}

std::vector<StreamWindow> StreamingClassifier::push(const std::int16_t* samples, std::size_t frames, int channels) {
  return push_frames(samples, frames, channels, 1.0f / 32768.0f);  // exact: a power of two
}

std::vector<StreamWindow> StreamingClassifier::advance() {
  // Every regular window this chunk completed, scored a batch at a time: only one batch of
  // windows is ever cut from the buffer.
  std::vector<StreamWindow> out;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  while (regular_ * hop_ + window_ <= received_) {
    const std::size_t s = regular_ * hop_;
    spans.emplace_back(s, s + window_);
    last_ = s;
    ++regular_;
    if (spans.size() == batch_) {
      for (StreamWindow& w : score(spans)) out.push_back(std::move(w));
      spans.clear();
    }
  }
  if (!spans.empty())
    for (StreamWindow& w : score(spans)) out.push_back(std::move(w));
  trim();
  return out;
}

std::vector<StreamWindow> StreamingClassifier::flush() {
  if (closed_) throw AudioError(where_ + ": the stream was flushed; no more audio can be pushed");
  closed_ = true;
  const std::size_t n = received_;
  if (n == 0) throw AudioError(where_ + ": audio has no samples");
  if (n < frame_) {
    throw AudioError(where_ + ": audio is " + format("%.1f", n * 1000.0 / rate_) + " ms long, shorter than one " +
                     format("%g", frame_ * 1000.0 / rate_) + " ms analysis frame");
  }
  std::vector<StreamWindow> out;
  if (!last_) {
    out = score({{0, n}});  // shorter than one window: one window, zero padded
  } else if (*last_ + window_ < n) {
    out = score({{n - window_, n}});  // audio left over: a last window ending at the end
  }
  std::vector<float>().swap(buf_);  // closed: nothing more is needed
  buf_off_ = 0;
  buf_start_ = received_;
  return out;
}

std::vector<StreamWindow> StreamingClassifier::score(const std::vector<std::pair<std::size_t, std::size_t>>& spans) {
  // Rows of the model's window, zero padded after each valid part (a window shorter than the
  // model's is fed as a short clip is).
  std::vector<float> rows(spans.size() * model_window_, 0.0f);
  std::vector<std::int64_t> lengths(spans.size());
  for (std::size_t r = 0; r < spans.size(); ++r) {
    const auto [start, end] = spans[r];
    const float* from = buf_.data() + buf_off_ + (start - buf_start_);
    std::copy(from, from + (end - start), rows.begin() + static_cast<std::ptrdiff_t>(r * model_window_));
    lengths[r] = static_cast<std::int64_t>(end - start);
  }
  const std::vector<float> scores = classifier_->scores(std::move(rows), std::move(lengths));
  const std::size_t labels_n = scores.size() / spans.size();
  std::vector<StreamWindow> out;
  out.reserve(spans.size());
  for (std::size_t r = 0; r < spans.size(); ++r) {
    StreamWindow w;
    w.index = emitted_++;
    w.start_sample = spans[r].first;
    w.end_sample = spans[r].second;
    w.sample_rate = rate_;
    w.scores.assign(scores.begin() + static_cast<std::ptrdiff_t>(r * labels_n),
                    scores.begin() + static_cast<std::ptrdiff_t>((r + 1) * labels_n));
    out.push_back(std::move(w));
  }
  return out;
}

void StreamingClassifier::trim() {
  // Keep what a future window may need: from the next regular window's start, and always the
  // last W samples (the end-aligned window of flush()).
  const std::size_t keep = received_ >= window_ ? std::min(regular_ * hop_, received_ - window_) : 0;
  if (keep <= buf_start_) return;
  buf_off_ += keep - buf_start_;
  buf_start_ = keep;
  // Drop the dead prefix once it is as long as what is kept: amortised O(1) per sample, and the
  // vector never holds more than twice the live samples plus one chunk.
  if (buf_off_ >= buf_.size() - buf_off_) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(buf_off_));
    buf_off_ = 0;
  }
}

}  // namespace ast
