// ast-deploy C++ runtime: the window rule, the twin of ast_deploy/windows.py (docs/streaming.md, section 3).
//
// Audio longer than the model's window is cut into windows `hop` samples apart (default hop: one
// window); the last window is aligned to the end of the audio; audio shorter than the window is one
// window, zero padded; audio shorter than one analysis frame has no window at all. The rule is written
// in two halves so that a stream can apply it as samples arrive: regular_window_count() (the windows
// 0, H, 2H, ... that fit whole) and closing_window() (what the end of the audio adds). The golden cases
// of tests/golden/windows.json hold this header and the Python module to the same answers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace ast {

// round(seconds * sample_rate), half to even (std::nearbyint in the default rounding mode, Python's
// round): the one conversion of a duration into samples. `seconds` must be >= 0.
std::size_t seconds_to_samples(double seconds, int sample_rate);

// Samples between window starts: max(1, seconds_to_samples(hop_seconds)) for hop_seconds > 0, else
// (0) one window. ast::Error for a negative or non-finite hop.
std::size_t hop_length(double hop_seconds, int sample_rate, std::size_t window);

// Windows 0, H, 2H, ... that fit whole in num_samples: all a stream can emit before its end.
std::size_t regular_window_count(std::size_t num_samples, std::size_t window, std::size_t hop);

// The start of the window the end of the audio adds after the regular ones: 0 (one short window)
// when none fits whole, num_samples - window when audio is left after the last one; else none.
std::optional<std::size_t> closing_window(std::size_t num_samples, std::size_t window, std::size_t hop);

// Window starts covering num_samples (the regular ones, then the closing one).
std::vector<std::size_t> window_starts(std::size_t num_samples, std::size_t window, std::size_t hop);

// window_starts(...).size() without building the list.
std::size_t window_count(std::size_t num_samples, std::size_t window, std::size_t hop);

// The end (exclusive) of the window at `start`: a window never reaches past the audio.
inline std::size_t window_end(std::size_t start, std::size_t window, std::size_t num_samples) {
  return std::min(start + window, num_samples);
}

// ast::AudioError "<where>: audio has no samples" or "<where>: audio is X ms long, shorter than one
// Y ms analysis frame" for audio without a single analysis frame (and so without a window).
void check_audio_length(std::size_t num_samples, std::size_t frame_samples, int sample_rate, const std::string& where);

}  // namespace ast
