// The window rule (ast/windows.h); ast_deploy/windows.py is the same, function for function.
#include "ast/windows.h"

#include <cmath>

#include "ast/classifier.h"
#include "text.h"

namespace ast {

using detail::format;

std::size_t seconds_to_samples(double seconds, int sample_rate) {
  return static_cast<std::size_t>(std::nearbyint(seconds * sample_rate));
}

std::size_t hop_length(double hop_seconds, int sample_rate, std::size_t window) {
  if (!std::isfinite(hop_seconds) || hop_seconds < 0)
    throw Error("hop must be positive, got " + format("%g", hop_seconds));
  if (hop_seconds == 0) return window;
  return std::max<std::size_t>(1, seconds_to_samples(hop_seconds, sample_rate));
}

std::size_t regular_window_count(std::size_t num_samples, std::size_t window, std::size_t hop) {
  return num_samples < window ? 0 : (num_samples - window) / hop + 1;
}

std::optional<std::size_t> closing_window(std::size_t num_samples, std::size_t window, std::size_t hop) {
  const std::size_t regular = regular_window_count(num_samples, window, hop);
  if (regular == 0) return 0;
  if ((regular - 1) * hop + window < num_samples) return num_samples - window;
  return std::nullopt;
}

std::vector<std::size_t> window_starts(std::size_t num_samples, std::size_t window, std::size_t hop) {
  std::vector<std::size_t> starts;
  const std::size_t regular = regular_window_count(num_samples, window, hop);
  starts.reserve(regular + 1);
  for (std::size_t k = 0; k < regular; ++k) starts.push_back(k * hop);
  if (const auto last = closing_window(num_samples, window, hop)) starts.push_back(*last);
  return starts;
}

std::size_t window_count(std::size_t num_samples, std::size_t window, std::size_t hop) {
  return regular_window_count(num_samples, window, hop) + (closing_window(num_samples, window, hop) ? 1 : 0);
}

void check_audio_length(std::size_t num_samples, std::size_t frame_samples, int sample_rate, const std::string& where) {
  if (num_samples == 0) throw AudioError(where + ": audio has no samples");
  if (num_samples < frame_samples) {
    throw AudioError(where + ": audio is " + format("%.1f", num_samples * 1000.0 / sample_rate) +
                     " ms long, shorter than one " + format("%g", frame_samples * 1000.0 / sample_rate) +
                     " ms analysis frame");
  }
}

}  // namespace ast
