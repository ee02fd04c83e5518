// ast_classify: the command-line host of the C++ runtime.
//
//   ast_classify ARTIFACT_DIR FILE.wav [FILE.wav ...] [--top-k K] [--json] [--backend NAME] ...
//   ast_classify ARTIFACT_DIR [FILE.wav] --bench N [--warmup W]
//   ast_classify ARTIFACT_DIR [-] --stream [options] < PCM     (raw PCM on stdin: stream_mode.h)
//
// --json prints what `ast-deploy predict ARTIFACT_DIR FILE.wav --json` prints (same keys, same
// order); --json --embeddings adds each window's and each file's clip embedding, as
// `ast-deploy predict --json --embeddings` does. Bad input (manifest, artifact hash, WAV, flags) is one "error: ..." line on stderr and
// exit status 2, as in the Python CLI.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ast/classifier.h"
#include "stream_mode.h"

namespace {

using ordered_json = nlohmann::ordered_json;

constexpr const char* kUsage =
    "usage: ast_classify ARTIFACT_DIR FILE.wav [FILE.wav ...] [options]\n"
    "       ast_classify ARTIFACT_DIR [FILE.wav] --bench N [--warmup W] [options]\n"
    "       ast_classify ARTIFACT_DIR [-] --stream [--format s16le|f32le] [options] < PCM\n"
    "\n"
    "Top labels of WAV files with an artifact directory written by 'ast-deploy export'.\n"
    "\n"
    "options:\n"
    "  -k, --top-k K        labels to print (default 5)\n"
    "  --json               JSON with the per-window timeline (as 'ast-deploy predict --json')\n"
    "  --embeddings         with --json: each window's and each file's clip embedding (mean over\n"
    "                       windows), as 'ast-deploy predict --json --embeddings'\n"
    "  --backend NAME       the artifact to run: torchscript (default), aoti, aoti-int8, tensorrt,\n"
    "                       openvino, openvino-int8 (its format picks the backend)\n"
    "  --aggregate A        rank by mean (default) or max over windows\n"
    "  --hop SECONDS        seconds between windows for long audio (default: one window)\n"
    "  --batch-size N       windows per graph call (default 8)\n"
    "  --threads N          intra-op threads (libtorch, OpenVINO; default: the library's)\n"
    "  --precision-hint P   OpenVINO inference precision: f32 (default) or bf16\n"
    "  --cache-dir DIR      OpenVINO compiled-model cache (a faster second load)\n"
    "  --device D           cpu (default) or cuda[:N]\n"
    "  --bench N            time N batch-1 graph calls after warm-up; print latency JSON\n"
    "  --warmup W           warm-up calls before --bench timing (default 10)\n"
    "  --no-verify          skip the artifact's sha256 check\n"
    "  -h, --help           this help\n";

// Bad command-line usage; reported like ast::Error (exit status 2).
struct UsageError : ast::Error {
  using ast::Error::Error;
};

struct Args {
  std::string model;
  std::vector<std::string> files;
  std::size_t top_k = 5;
  bool json = false;
  std::string backend = "torchscript";
  ast::Aggregate aggregate = ast::Aggregate::Mean;
  ast::Options options;
  long bench = 0;
  long warmup = 10;
  ast_tool::StreamArgs stream;
};

long parse_int(const std::string& flag, const std::string& value, long min_value) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < min_value)
    throw UsageError(flag + " takes an integer >= " + std::to_string(min_value) + ", not '" + value + "'");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage << ast_tool::kStreamUsage;
      std::exit(0);
    } else if (arg == "-k" || arg == "--top-k") {
      a.top_k = static_cast<std::size_t>(parse_int(arg, value(), 1));
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "--embeddings") {
      a.options.embeddings = true;
    } else if (arg == "--backend") {
      a.backend = value();
    } else if (arg == "--aggregate") {
      const std::string v = value();
      if (v != "mean" && v != "max") throw UsageError("--aggregate must be mean or max, not '" + v + "'");
      a.aggregate = v == "mean" ? ast::Aggregate::Mean : ast::Aggregate::Max;
    } else if (arg == "--hop") {
      const std::string v = value();
      char* end = nullptr;
      a.options.hop_seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.options.hop_seconds > 0))
        throw UsageError("--hop takes a positive number of seconds, not '" + v + "'");
    } else if (arg == "--batch-size") {
      a.options.batch_size = static_cast<std::size_t>(parse_int(arg, value(), 1));
    } else if (arg == "--threads") {
      a.options.threads = static_cast<int>(parse_int(arg, value(), 1));
    } else if (arg == "--precision-hint") {
      const std::string v = value();
      if (v != "f32" && v != "bf16") throw UsageError("--precision-hint must be f32 or bf16, not '" + v + "'");
      a.options.inference_precision = v;
    } else if (arg == "--cache-dir") {
      a.options.cache_dir = value();
    } else if (arg == "--device") {
      a.options.device = value();
    } else if (arg == "--bench") {
      a.bench = parse_int(arg, value(), 1);
    } else if (arg == "--warmup") {
      a.warmup = parse_int(arg, value(), 0);
    } else if (arg == "--no-verify") {
      a.options.verify_sha256 = false;
    } else if (ast_tool::parse_stream_option(arg, value, a.stream)) {
      // a --stream option, taken
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError("unknown option " + arg + " (see --help)");
    } else {
      positional.push_back(arg);
    }
  }
  if (a.options.embeddings && (!a.json || a.stream.enabled || a.bench > 0))
    throw UsageError("--embeddings: the embeddings go into the JSON output; add --json (not with --stream or --bench)");
  if (positional.empty()) throw UsageError("missing ARTIFACT_DIR (see --help)");
  a.model = positional.front();
  a.files.assign(positional.begin() + 1, positional.end());
  if (a.stream.enabled) {
    ast_tool::check_stream_args(a.stream);
    if (a.bench > 0 || !(a.files.empty() || (a.files.size() == 1 && a.files[0] == "-")))
      throw UsageError("--stream reads raw PCM from stdin: give no FILE.wav (or -) and no --bench");
  } else if (!a.stream.given.empty()) {
    throw UsageError(a.stream.given + " is an option of --stream (see --help)");
  } else if (a.files.empty() && a.bench == 0) {
    throw UsageError("missing FILE.wav (see --help)");
  }
  return a;
}

ordered_json to_json(const ast::Prediction& p, std::size_t k, ast::Aggregate aggregate) {
  ordered_json top = ordered_json::array();
  for (const ast::Score& s : p.top(k, aggregate)) {
    top.push_back({{"index", s.index}, {"label", s.label}, {"score", static_cast<double>(s.score)},
                   {"mean", static_cast<double>(s.mean)}, {"max", static_cast<double>(s.max)}});
  }
  // float32 values as doubles, as Python's json writes float32 arrays' tolist()
  const auto vector = [](const std::vector<float>& v) {
    ordered_json out = ordered_json::array();
    for (float x : v) out.push_back(static_cast<double>(x));
    return out;
  };
  const bool embeddings = !p.embeddings.empty();
  ordered_json windows = ordered_json::array();
  const std::vector<std::size_t> ends = p.ends();
  for (std::size_t w = 0; w < p.starts.size(); ++w) {
    ordered_json wtop = ordered_json::array();
    for (const ast::Score& s : p.window_top(w, k))
      wtop.push_back({{"index", s.index}, {"label", s.label}, {"score", static_cast<double>(s.score)}});
    ordered_json window = {{"start", static_cast<double>(p.starts[w]) / p.sample_rate},
                           {"end", static_cast<double>(ends[w]) / p.sample_rate},
                           {"top", std::move(wtop)}};
    if (embeddings) window["embedding"] = vector(p.embeddings.at(w));
    windows.push_back(std::move(window));
  }
  ordered_json out = {{"source", p.source},
                      {"duration", p.duration()},
                      {"aggregate", aggregate == ast::Aggregate::Mean ? "mean" : "max"},
                      {"top", std::move(top)}};
  if (embeddings) out["embedding"] = vector(p.embedding());
  out["windows"] = std::move(windows);
  return out;
}

void print_table(const ast::Prediction& p, std::size_t k, ast::Aggregate aggregate) {
  const bool mean = aggregate == ast::Aggregate::Mean;
  std::printf("%s  (%.2f s, %zu window%s)\n", p.source.c_str(), p.duration(), p.starts.size(),
              p.starts.size() > 1 ? "s" : "");
  std::printf("%3s  %-40s %8s %8s\n", "#", "label", mean ? "mean" : "max", mean ? "max" : "mean");
  std::size_t rank = 1;
  for (const ast::Score& s : p.top(k, aggregate))
    std::printf("%3zu  %-40s %8.4f %8.4f\n", rank++, s.label.c_str(), s.score, mean ? s.max : s.mean);
}

using ast_tool::percentile;  // numpy.percentile's default, shared with --stream

// Batch-1 latency of one graph call (tensors in, logits out), after `warmup` untimed calls. The
// window is the first one of FILE when given, else seeded noise.
ordered_json bench(ast::Classifier& clf, const Args& a, double load_seconds) {
  const std::size_t n = clf.window_samples();
  std::vector<float> window(n, 0.0f);
  std::string input = "noise (seed 0)";
  auto valid = static_cast<std::int64_t>(n);
  if (!a.files.empty()) {
    const ast::Audio audio = ast::read_wav(a.files.front());
    if (audio.sample_rate != clf.sample_rate())
      throw ast::AudioError(a.files.front() + ": sample rate " + std::to_string(audio.sample_rate) +
                            " Hz, but the model takes " + std::to_string(clf.sample_rate()) + " Hz");
    valid = static_cast<std::int64_t>(std::min(n, audio.samples.size()));
    std::copy_n(audio.samples.begin(), valid, window.begin());
    input = a.files.front();
  } else {
    std::uint32_t state = 0;  // a linear congruential generator: the same noise on every platform
    for (float& x : window) {
      state = state * 1664525u + 1013904223u;
      x = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
  }
  const std::vector<std::int64_t> length = {valid};
  for (long i = 0; i < a.warmup; ++i) clf.logits(window, length);
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(a.bench));
  for (long i = 0; i < a.bench; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    clf.logits(window, length);
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> sorted(ms);
  std::sort(sorted.begin(), sorted.end());
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  double var = 0;
  for (double v : ms) var += (v - mean) * (v - mean);
  // Sample standard deviation (ddof=1), as the Python harness (ast_deploy/bench) reports it.
  const double std_dev = ms.size() > 1 ? std::sqrt(var / static_cast<double>(ms.size() - 1)) : 0.0;
  return {{"model", a.model},
          {"backend", clf.backend()},
          {"artifact", clf.artifact_path()},
          {"device", a.options.device},
          {"threads", clf.threads()},
          {"batch", 1},
          {"window_samples", n},
          {"input", input},
          {"warmup", a.warmup},
          {"iters", a.bench},
          {"load_seconds", load_seconds},
          {"latency_ms",
           {{"min", sorted.front()},
            {"p50", percentile(sorted, 50)},
            {"p90", percentile(sorted, 90)},
            {"p99", percentile(sorted, 99)},
            {"max", sorted.back()},
            {"mean", mean},
            {"std", std_dev}}},
          {"throughput_clips_per_s", 1000.0 / mean},
          // seconds of audio per second of compute (the Python harness's real_time_factor)
          {"real_time_factor", static_cast<double>(n) / clf.sample_rate() / (mean / 1000.0)}};
}

// One line, whatever the message holds.
std::string one_line(std::string msg) {
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  return msg;
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  ast::Classifier clf(a.model, a.backend, a.options);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (a.stream.enabled) return ast_tool::run_stream(clf, a.model, a.top_k, a.options, a.stream);
  if (a.bench > 0) {
    std::cout << bench(clf, a, load_seconds).dump(2) << "\n";
    return 0;
  }
  ordered_json results = ordered_json::array();
  std::vector<ast::Prediction> predictions;
  for (const std::string& file : a.files) predictions.push_back(clf.predict(ast::read_wav(file)));
  if (!a.json) {
    for (const auto& p : predictions) print_table(p, a.top_k, a.aggregate);
    return 0;
  }
  for (const auto& p : predictions) results.push_back(to_json(p, a.top_k, a.aggregate));
  const ordered_json out = {{"model", a.model}, {"backend", clf.backend()}, {"results", std::move(results)}};
  // ensure_ascii: the escaping Python's json.dumps applies to labels.
  std::cout << out.dump(2, ' ', true) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const ast::Error& e) {
    std::cerr << "error: " << one_line(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: internal error: " << one_line(e.what()) << "\n";
    return 1;
  }
}
