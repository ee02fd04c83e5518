// `ast_classify --stream`: raw PCM on stdin -> one JSON line per window and per event, a summary at
// the end: the lines of `ast-deploy stream` (docs/streaming.md, section 5).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ast/classifier.h"

namespace ast_tool {

constexpr const char* kStreamUsage =
    "\n"
    "stream mode (ast_classify ARTIFACT_DIR [-] --stream [options]): raw interleaved PCM on stdin at the\n"
    "model's rate, one JSON line per window and per event (as 'ast-deploy stream'):\n"
    "  --stream             read PCM from stdin until end of input or Ctrl-C\n"
    "  --format F           s16le (default) or f32le\n"
    "  --rate HZ            sample rate of the PCM (default 16000; must be the model's: no resampling)\n"
    "  --channels C         interleaved channels, averaged (default 1)\n"
    "  --chunk SECONDS      audio per read (default 0.1)\n"
    "  --window SECONDS     window, at most the model's (default: the model's); --hop as above\n"
    "  --events             track sound events (also on with any option below)\n"
    "  --threshold T        on threshold of every label (default 0.5)\n"
    "  --off-threshold T    off threshold (hysteresis; default: the on threshold)\n"
    "  --thresholds CSV     per-label rows label,on[,off] (default: the thresholds stored in\n"
    "                       ARTIFACT_DIR by 'ast-deploy thresholds --store', if any)\n"
    "  --min-duration S     drop events shorter than S seconds (default 0)\n"
    "  --merge-gap S        merge events of a label at most S seconds apart (default 0)\n";

struct StreamArgs {
  bool enabled = false;
  std::string format = "s16le";
  long rate = 16000;
  long channels = 1;
  double chunk = 0.1;
  double window = 0;  // seconds; 0: the model's
  bool events = false;
  std::optional<double> threshold, off_threshold, min_duration, merge_gap;
  std::string thresholds;  // CSV path; empty: the artifact directory's stored thresholds, if any
  std::string given;       // the first stream-only flag given (an error without --stream)
};

// Takes `arg` when it is a stream option (calling `value` for its value) and returns true.
bool parse_stream_option(const std::string& arg, const std::function<std::string()>& value, StreamArgs& s);

// The stream flags' own checks (format, rate, channels, chunk), before the model is loaded.
void check_stream_args(const StreamArgs& s);

// Runs the stream on stdin and prints its lines; returns the exit status.
int run_stream(ast::Classifier& clf, const std::string& model, std::size_t top_k, const ast::Options& options,
               const StreamArgs& s);

// numpy.percentile's default (linear interpolation between closest ranks) of sorted values.
inline double percentile(const std::vector<double>& sorted, double q) {
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace ast_tool
