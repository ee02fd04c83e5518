// ast_stream_check: the stream of ast/streaming.h against Classifier::predict, for
// tests/test_cpp_streaming.py.
//
//   ast_stream_check ARTIFACT_DIR FILE.wav [--hop S] [--batch-size N] [--seeds N] [--backend B] [--threads N]
//                    [--long-seconds T --long-hop S --long-chunk S]
//
// For each seed the file is pushed in random chunk sizes (empty chunks, single samples, up to
// three windows at once; odd seeds as two identical channels) and the windows are compared with
// predict() with the same hop. --long-seconds streams T seconds of generated noise and reports the
// samples held and the process's resident memory along the way. Prints one JSON object; the
// Python test asserts on it. Errors: one "error: ..." line, exit 2.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ast/classifier.h"
#include "ast/streaming.h"
#include "ast/windows.h"

namespace {

using json = nlohmann::ordered_json;

long rss_kib() {  // VmRSS of this process (Linux); -1 elsewhere
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = -1;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 12, '\n');
  }
  return -1;
}

json chunked_run(ast::Classifier& clf, const ast::StreamOptions& options, const std::vector<float>& x,
                 const ast::Prediction& offline, unsigned seed) {
  ast::StreamingClassifier stream(clf, options, "check");
  const std::size_t w = stream.window(), h = stream.hop();
  const int channels = seed % 2 == 1 ? 2 : 1;
  std::mt19937 rng(seed);
  std::vector<ast::StreamWindow> windows;
  std::size_t pos = 0, chunks = 0, max_buffered = 0, max_chunk = 0;
  bool eager = true;  // every window a chunk completed came back from that push
  std::vector<float> frames;
  while (pos < x.size()) {
    const unsigned kind = rng() % 10;
    std::size_t n = kind == 0   ? 0
                    : kind < 4  ? 1 + rng() % 100
                    : kind < 7  ? 1 + rng() % h
                                : h + rng() % (3 * w);
    n = std::min(n, x.size() - pos);
    frames.assign(n * channels, 0.0f);
    for (std::size_t i = 0; i < n; ++i)
      for (int c = 0; c < channels; ++c) frames[i * channels + c] = x[pos + i];  // (x + x) / 2 == x exactly
    for (ast::StreamWindow& win : stream.push(frames.data(), n, channels)) windows.push_back(std::move(win));
    pos += n;
    ++chunks;
    max_chunk = std::max(max_chunk, n);
    max_buffered = std::max(max_buffered, stream.buffered());
    eager = eager && windows.size() == ast::regular_window_count(pos, w, h);
  }
  for (ast::StreamWindow& win : stream.flush()) windows.push_back(std::move(win));
  std::string after_flush = "accepted";  // a chunk after flush() must be refused
  try {
    stream.push(x.data(), 1, channels);
  } catch (const ast::AudioError& e) {
    after_flush = e.what();
  }

  bool same_spans = windows.size() == offline.starts.size();
  const std::vector<std::size_t> ends = offline.ends();
  double worst = 0;
  for (std::size_t i = 0; same_spans && i < windows.size(); ++i) {
    const ast::StreamWindow& win = windows[i];
    same_spans = win.index == i && win.start_sample == offline.starts[i] && win.end_sample == ends[i];
    for (std::size_t j = 0; same_spans && j < win.scores.size(); ++j)
      worst = std::max(worst, static_cast<double>(std::fabs(win.scores[j] - offline.scores[i][j])));
  }
  return {{"seed", seed},       {"channels", channels},         {"chunks", chunks},
          {"windows", windows.size()}, {"same_spans", same_spans}, {"max_abs_diff", worst},
          {"max_buffered", max_buffered}, {"max_chunk", max_chunk}, {"eager", eager},
          {"window", w},        {"hop", h},           {"push_after_flush", after_flush}};
}

json long_run(ast::Classifier& clf, const ast::StreamOptions& options, double seconds, double chunk_seconds) {
  ast::StreamingClassifier stream(clf, options, "long");
  const auto total = static_cast<std::size_t>(std::llround(seconds * stream.sample_rate()));
  const auto chunk = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(chunk_seconds * stream.sample_rate())));
  std::vector<float> frames(chunk);
  std::uint32_t state = 1;  // a linear congruential generator: the same noise everywhere
  std::size_t windows = 0, pos = 0, max_buffered = 0;
  long rss_after_first_minute = -1, rss_max = 0;
  while (pos < total) {
    const std::size_t n = std::min(chunk, total - pos);
    for (std::size_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      frames[i] = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    windows += stream.push(frames.data(), n, 1).size();
    pos += n;
    max_buffered = std::max(max_buffered, stream.buffered());
    const long rss = rss_kib();
    rss_max = std::max(rss_max, rss);
    if (rss_after_first_minute < 0 && pos >= 60u * static_cast<std::size_t>(stream.sample_rate()))
      rss_after_first_minute = rss;
  }
  windows += stream.flush().size();
  const std::size_t w = stream.window();
  return {{"seconds", static_cast<double>(total) / stream.sample_rate()},
          {"windows", windows},
          {"expected_windows", ast::window_count(total, w, stream.hop())},
          {"max_buffered", max_buffered},
          {"window", w},
          {"chunk", chunk},
          {"rss_kib_after_first_minute", rss_after_first_minute},
          {"rss_kib_max", rss_max},
          {"rss_kib_end", rss_kib()}};
}

int run(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string backend = "torchscript";
  ast::StreamOptions options;
  unsigned seeds = 6;
  double long_seconds = 0, long_hop = 0, long_chunk = 0.1;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ast::Error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--hop") options.hop_seconds = std::stod(value());
    else if (arg == "--batch-size") options.batch_size = std::stoul(value());
    else if (arg == "--seeds") seeds = static_cast<unsigned>(std::stoul(value()));
    else if (arg == "--backend") backend = value();
    else if (arg == "--threads") threads = std::stoi(value());
    else if (arg == "--long-seconds") long_seconds = std::stod(value());
    else if (arg == "--long-hop") long_hop = std::stod(value());
    else if (arg == "--long-chunk") long_chunk = std::stod(value());
    else positional.push_back(arg);
  }
  if (positional.size() != 2) throw ast::Error("usage: ast_stream_check ARTIFACT_DIR FILE.wav [options]");
  ast::Options clf_options;
  clf_options.hop_seconds = options.hop_seconds;
  clf_options.batch_size = options.batch_size;
  clf_options.threads = threads;
  ast::Classifier clf(positional[0], backend, clf_options);
  const ast::Audio audio = ast::read_wav(positional[1]);
  const ast::Prediction offline = clf.predict(audio);
  json runs = json::array();
  for (unsigned seed = 0; seed < seeds; ++seed) runs.push_back(chunked_run(clf, options, audio.samples, offline, seed));
  json out = {{"offline_windows", offline.starts.size()}, {"runs", std::move(runs)}};
  if (long_seconds > 0) {
    ast::StreamOptions long_options = options;
    long_options.hop_seconds = long_hop;
    out["long"] = long_run(clf, long_options, long_seconds, long_chunk);
  }
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
