// `ast_classify --stream`: see stream_mode.h. The line formats, the latency and real-time factor
// definitions and the Ctrl-C behaviour are those of `ast-deploy stream` (docs/streaming.md,
// section 5); lines are written with Python's json.dumps separators, so both hosts print the same
// text up to the digits of the scores.
#include "stream_mode.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "ast/streaming.h"
#include "ast/windows.h"
#include "text.h"

namespace ast_tool {

namespace {

using json = nlohmann::ordered_json;

// json.dumps(obj) with its default separators (", " and ": ") and ensure_ascii.
std::string dumps(const json& j) {
  std::string out;
  if (j.is_object()) {
    out = "{";
    for (auto it = j.begin(); it != j.end(); ++it)
      out += (it == j.begin() ? "" : ", ") + json(it.key()).dump(-1, ' ', true) + ": " + dumps(it.value());
    return out + "}";
  }
  if (j.is_array()) {
    out = "[";
    for (auto it = j.begin(); it != j.end(); ++it) out += (it == j.begin() ? "" : ", ") + dumps(*it);
    return out + "]";
  }
  return j.dump(-1, ' ', true);
}

void line(const json& j) { std::cout << dumps(j) << "\n" << std::flush; }  // live: each line as it is known

double parse_number(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw ast::Error(flag + " takes a number, not '" + text + "'");
  return v;
}

long parse_integer(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') throw ast::Error(flag + " takes an integer, not '" + text + "'");
  return v;
}

std::string num(double v) { return ast::detail::format("%g", v); }

// SIGINT sets a flag (instead of ending the process inside a model call) while the stream runs.
volatile std::sig_atomic_t g_stopped = 0;
extern "C" void on_sigint(int) { g_stopped = 1; }

class SigintFlag {
 public:
  SigintFlag() {
    struct sigaction action {};
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_);
  }
  ~SigintFlag() { sigaction(SIGINT, &previous_, nullptr); }
  SigintFlag(const SigintFlag&) = delete;
  SigintFlag& operator=(const SigintFlag&) = delete;

 private:
  struct sigaction previous_ {};
};

constexpr int kPollMs = 50;  // how often a blocked read wakes up to notice Ctrl-C

}  // namespace

bool parse_stream_option(const std::string& arg, const std::function<std::string()>& value, StreamArgs& s) {
  if (arg == "--stream") s.enabled = true;
  else if (arg == "--format") s.format = value();
  else if (arg == "--rate") s.rate = parse_integer(arg, value());
  else if (arg == "--channels") s.channels = parse_integer(arg, value());
  else if (arg == "--chunk") s.chunk = parse_number(arg, value());
  else if (arg == "--window") {
    s.window = parse_number(arg, value());
    if (!(s.window > 0) || !std::isfinite(s.window)) throw ast::Error("window must be positive, got " + num(s.window));
  } else if (arg == "--events") s.events = true;
  else if (arg == "--threshold") s.threshold = parse_number(arg, value());
  else if (arg == "--off-threshold") s.off_threshold = parse_number(arg, value());
  else if (arg == "--min-duration") s.min_duration = parse_number(arg, value());
  else if (arg == "--merge-gap") s.merge_gap = parse_number(arg, value());
  else if (arg == "--thresholds") s.thresholds = value();
  else return false;
  if (arg != "--stream" && s.given.empty()) s.given = arg;
  return true;
}

void check_stream_args(const StreamArgs& s) {
  if (s.format != "s16le" && s.format != "f32le")
    throw ast::Error("--format must be one of s16le, f32le, not '" + s.format + "'");
  if (s.rate <= 0 || s.channels <= 0)
    throw ast::Error("--rate and --channels must be positive, got " + std::to_string(s.rate) + " and " +
                     std::to_string(s.channels));
  if (!(s.chunk > 0) || !std::isfinite(s.chunk)) throw ast::Error("--chunk must be positive, got " + num(s.chunk));
}

int run_stream(ast::Classifier& clf, const std::string& model, std::size_t top_k, const ast::Options& options,
               const StreamArgs& s) {
  const int rate = clf.sample_rate();
  if (s.rate != rate) {
    throw ast::AudioError("stdin: sample rate " + std::to_string(s.rate) + " Hz, but the model takes " +
                          std::to_string(rate) + " Hz (the C++ runtime does not resample; resample upstream, e.g. " +
                          "ffmpeg ... -ar " + std::to_string(rate) + ")");
  }
  ast::StreamOptions stream_options;
  stream_options.hop_seconds = options.hop_seconds;
  stream_options.window_seconds = s.window;
  stream_options.batch_size = options.batch_size;
  ast::StreamingClassifier stream(clf, stream_options, "stdin");

  const std::vector<std::string>& labels = clf.labels();
  std::optional<ast::EventTracker> tracker;
  if (s.events || s.threshold || s.off_threshold || s.min_duration || s.merge_gap || !s.thresholds.empty()) {
    ast::EventConfig config;
    config.threshold = s.threshold.value_or(0.5);
    config.off_threshold = s.off_threshold;
    // --thresholds, else the thresholds the artifact directory carries (as 'ast-deploy stream' does).
    const std::string csv = s.thresholds.empty() ? clf.default_thresholds() : s.thresholds;
    if (!csv.empty()) config.thresholds = ast::read_thresholds(csv, labels, s.off_threshold);
    config.min_duration = s.min_duration.value_or(0.0);
    config.merge_gap = s.merge_gap.value_or(0.0);
    tracker.emplace(labels, config, stream.hop(), rate);
  }

  line({{"type", "start"},
        {"model", model},
        {"backend", clf.backend()},
        {"sample_rate", rate},
        {"input_rate", s.rate},
        {"channels", s.channels},
        {"window", static_cast<double>(stream.window()) / rate},
        {"hop", static_cast<double>(stream.hop()) / rate},
        {"labels", labels.size()}});

  std::size_t windows = 0, events = 0;
  std::vector<double> latencies_ms;
  double compute_s = 0;
  const auto print_events = [&](const std::vector<ast::Event>& done) {
    for (const ast::Event& e : done) {
      line({{"type", "event"}, {"label", e.label}, {"index", e.index}, {"onset", e.onset}, {"offset", e.offset},
            {"peak", e.peak}});
      ++events;
    }
  };
  const auto print_windows = [&](const std::vector<ast::StreamWindow>& done, double took_s) {
    for (const ast::StreamWindow& w : done) {
      json top = json::array();
      for (const ast::Score& t : ast::rank(w.scores, labels, top_k))
        top.push_back({{"index", t.index}, {"label", t.label}, {"score", static_cast<double>(t.score)}});
      line({{"type", "window"}, {"index", w.index}, {"start", w.start()}, {"end", w.end()}, {"top", std::move(top)}});
      latencies_ms.push_back(took_s * 1000.0);
      ++windows;
      if (tracker) print_events(tracker->update(w));
    }
  };
  // The latency of a window is the duration of the push (or flush) that completed it; compute_s
  // sums them: time spent on the audio, not waiting for it.
  const auto timed = [&](const auto& call) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<ast::StreamWindow> done = call();
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    compute_s += took;
    print_windows(done, took);
  };

  const bool s16 = s.format == "s16le";
  const std::size_t sample_bytes = s16 ? 2 : 4, channels = static_cast<std::size_t>(s.channels);
  const std::size_t frame_bytes = sample_bytes * channels;
  const std::size_t frames = std::max<std::size_t>(1, ast::seconds_to_samples(s.chunk, static_cast<int>(s.rate)));
  std::vector<unsigned char> pending, block(frames * frame_bytes);
  std::vector<std::int16_t> pcm16;
  std::vector<float> pcm32;
  g_stopped = 0;
  {
    const SigintFlag sigint;
    while (!g_stopped) {
      pollfd fd{STDIN_FILENO, POLLIN, 0};
      const int ready = poll(&fd, 1, kPollMs);
      if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
      const ssize_t got = ready < 0 ? -1 : read(STDIN_FILENO, block.data(), block.size());
      if (got < 0) {
        if (errno == EINTR) continue;
        throw ast::Error(std::string("stdin: cannot read (") + std::strerror(errno) + ")");
      }
      if (got == 0) break;
      pending.insert(pending.end(), block.begin(), block.begin() + got);
      const std::size_t whole = pending.size() / frame_bytes, values = whole * channels;
      if (whole == 0) continue;
      // Little-endian bytes -> samples, whatever the host's byte order.
      const unsigned char* b = pending.data();
      if (s16) {
        pcm16.resize(values);
        for (std::size_t i = 0; i < values; ++i)
          pcm16[i] = static_cast<std::int16_t>(static_cast<std::uint16_t>(b[2 * i] | (b[2 * i + 1] << 8)));
        timed([&] { return stream.push(pcm16.data(), whole, static_cast<int>(channels)); });
      } else {
        pcm32.resize(values);
        for (std::size_t i = 0; i < values; ++i) {
          const std::uint32_t u = static_cast<std::uint32_t>(b[4 * i]) | (static_cast<std::uint32_t>(b[4 * i + 1]) << 8) |
                                  (static_cast<std::uint32_t>(b[4 * i + 2]) << 16) |
                                  (static_cast<std::uint32_t>(b[4 * i + 3]) << 24);
          std::memcpy(&pcm32[i], &u, sizeof u);
        }
        timed([&] { return stream.push(pcm32.data(), whole, static_cast<int>(channels)); });
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(whole * frame_bytes));
    }
    if (!pending.empty() && !g_stopped) {
      throw ast::AudioError("stdin: " + std::to_string(pending.size()) + " trailing byte(s) do not make a whole frame (" +
                            std::to_string(channels) + " channel(s) x " + std::to_string(sample_bytes) + " bytes)");
    }
    timed([&] {
      try {
        return stream.flush();
      } catch (const ast::AudioError&) {
        if (!g_stopped) throw;  // too little audio: an error, unless the user stopped early
        return std::vector<ast::StreamWindow>{};
      }
    });
    if (tracker) print_events(tracker->flush());
  }

  json latency = {{"p50", nullptr}, {"p99", nullptr}, {"max", nullptr}};
  if (!latencies_ms.empty()) {
    std::vector<double> sorted(latencies_ms);
    std::sort(sorted.begin(), sorted.end());
    latency = {{"p50", percentile(sorted, 50)}, {"p99", percentile(sorted, 99)}, {"max", sorted.back()}};
  }
  const double duration = stream.duration();
  line({{"type", "summary"},
        {"windows", windows},
        {"events", events},
        {"duration", duration},
        {"compute_s", compute_s},
        {"rtf", duration > 0 ? json(compute_s / duration) : json(nullptr)},
        {"latency_ms", std::move(latency)},
        {"interrupted", g_stopped != 0}});
  return 0;
}

}  // namespace ast_tool
