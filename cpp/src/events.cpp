// Sound events from per-window scores (docs/streaming.md, section 4): the C++ twin of
// ast_deploy/events.py's EventTracker and read_thresholds, with the same messages.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <unordered_map>

#include "ast/streaming.h"
#include "text.h"

namespace ast {

namespace {

std::string num(double value) { return detail::format("%g", value); }

std::string strip(const std::string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// One line of Python's csv.reader (default dialect): ',' separates fields, a field that starts
// with '"' is quoted ("" is a literal quote, commas inside are data). Labels such as
// "Male speech, man speaking" need the quotes.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields;
  if (line.empty()) return fields;
  std::string field;
  bool quoted = false, at_start = true;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"' && at_start) {
      quoted = true;
      at_start = false;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
      at_start = true;
    } else {
      field += c;
      at_start = false;
    }
  }
  fields.push_back(field);
  return fields;
}

// A whole field as a number (what Python's float() takes, near enough: decimal, exponent, inf, nan).
bool parse_number(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::map<std::size_t, std::pair<double, double>> read_thresholds(const std::string& path,
                                                                 const std::vector<std::string>& labels,
                                                                 std::optional<double> off_threshold) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no such file");
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < labels.size(); ++i) by_name[labels[i]] = i;  // a repeated name: the last one
  std::map<std::size_t, std::pair<double, double>> out;
  std::string line;
  bool first_row = true;
  for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> row = csv_fields(line);
    std::string joined;
    for (const auto& f : row) joined += f;
    if (row.empty() || strip(joined).empty() || strip(row[0]).rfind('#', 0) == 0) continue;
    for (auto& f : row) f = strip(f);
    const bool header = first_row && [&] {
      std::string lower;
      for (char c : row[0]) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return lower == "label";
    }();
    first_row = false;
    if (header) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (row.size() != 2 && row.size() != 3)
      throw Error(where + ": expected label,on[,off], got " + std::to_string(row.size()) + " fields");
    std::size_t index = 0;
    if (const auto it = by_name.find(row[0]); it != by_name.end()) {
      index = it->second;
    } else if (all_digits(row[0]) && row[0].size() < 19 && std::stoull(row[0]) < labels.size()) {
      index = static_cast<std::size_t>(std::stoull(row[0]));
    } else {
      throw Error(where + ": unknown label '" + row[0] + "'");
    }
    double on = 0, off = 0;
    if (!parse_number(row[1], on) || (row.size() == 3 && !parse_number(row[2], off))) {
      std::string given = row[1] + (row.size() == 3 ? "," + row[2] : "");
      throw Error(where + ": thresholds must be numbers, got '" + given + "'");
    }
    if (row.size() == 2) off = off_threshold ? std::min(on, *off_threshold) : on;
    if (!std::isfinite(on) || !std::isfinite(off)) throw Error(where + ": thresholds must be finite numbers");
    if (off > on) throw Error(where + ": off threshold " + num(off) + " is above the on threshold " + num(on));
    out[index] = {on, off};
  }
  if (in.bad()) throw Error(path + ": cannot read thresholds");
  return out;
}

struct EventTracker::Impl {
  struct Span {
    std::int64_t a2 = 0, b2 = 0;  // half samples
    double peak = 0;
  };

  std::vector<std::string> labels;
  std::vector<double> on, off;
  double min_duration = 0, merge_gap = 0;
  std::int64_t hop = 1;
  double rate2 = 2;  // half samples per second
  std::vector<std::optional<Span>> cur, pend;  // the open raw event; the closed one not yet final
  bool closed = false;

  void emit(std::size_t label, const Span& e, std::vector<Event>& out) const {
    if (static_cast<double>(e.b2 - e.a2) / rate2 >= min_duration)
      out.push_back(
          {labels[label], label, static_cast<double>(e.a2) / rate2, static_cast<double>(e.b2) / rate2, e.peak});
  }

  void close(std::size_t label) {
    // A pending event is still there only when the gap to this one is <= merge_gap: merge.
    const Span c = *cur[label];
    std::optional<Span>& p = pend[label];
    if (p) p = Span{p->a2, std::max(p->b2, c.b2), std::max(p->peak, c.peak)};
    else p = c;
    cur[label].reset();
  }
};

EventTracker::EventTracker(std::vector<std::string> labels, const EventConfig& config, std::size_t hop, int sample_rate)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.labels = std::move(labels);
  m.min_duration = config.min_duration;
  m.merge_gap = config.merge_gap;
  m.hop = static_cast<std::int64_t>(hop);
  m.rate2 = 2.0 * sample_rate;
  const std::pair<const char*, double> values[] = {{"threshold", config.threshold},
                                                   {"off-threshold", config.off_threshold.value_or(0.0)},
                                                   {"min-duration", config.min_duration},
                                                   {"merge-gap", config.merge_gap}};
  for (const auto& [name, value] : values)
    if (!std::isfinite(value)) throw Error(std::string(name) + " must be a finite number, got " + num(value));
  if (config.min_duration < 0 || config.merge_gap < 0) throw Error("min-duration and merge-gap must not be negative");
  if (config.off_threshold && *config.off_threshold > config.threshold)
    throw Error("off threshold " + num(*config.off_threshold) + " is above the on threshold " + num(config.threshold));
  if (hop < 1 || sample_rate < 1) throw Error("hop and sample rate must be positive");
  const std::size_t n = m.labels.size();
  m.on.assign(n, config.threshold);
  m.off.assign(n, config.off_threshold.value_or(config.threshold));
  for (const auto& [index, on_off] : config.thresholds) {
    const auto [on, off] = on_off;
    if (!std::isfinite(on) || !std::isfinite(off))
      throw Error("thresholds of label " + std::to_string(index) + " must be finite numbers");
    if (off > on)
      throw Error("off threshold " + num(off) + " of label " + std::to_string(index) + " is above its on threshold " +
                  num(on));
    if (index >= n)
      throw Error("threshold for label index " + std::to_string(index) + ", but the model has " + std::to_string(n) +
                  " labels");
    m.on[index] = on;
    m.off[index] = off;
  }
  m.cur.assign(n, std::nullopt);
  m.pend.assign(n, std::nullopt);
}

EventTracker::~EventTracker() = default;
EventTracker::EventTracker(EventTracker&&) noexcept = default;
EventTracker& EventTracker::operator=(EventTracker&&) noexcept = default;

double EventTracker::on_threshold(std::size_t label) const { return impl_->on.at(label); }
double EventTracker::off_threshold(std::size_t label) const { return impl_->off.at(label); }

std::vector<Event> EventTracker::update(std::size_t start_sample, std::size_t end_sample, const std::vector<float>& scores) {
  Impl& m = *impl_;
  if (m.closed) throw Error("event tracker was flushed; no more windows can be added");
  if (scores.size() != m.labels.size())
    throw Error("a window has " + std::to_string(scores.size()) + " scores, the tracker " +
                std::to_string(m.labels.size()) + " labels");
  // The window's segment in half samples: [centre - H/2, centre + H/2] clipped to the window.
  const auto s = static_cast<std::int64_t>(start_sample), e = static_cast<std::int64_t>(end_sample);
  const std::int64_t a2 = std::max(2 * s, s + e - m.hop), b2 = std::min(2 * e, s + e + m.hop);
  std::vector<Event> out;
  for (std::size_t i = 0; i < m.labels.size(); ++i) {
    const double x = scores[i];  // float32 widened to double, as the thresholds are
    if (m.cur[i]) {  // active
      if (x >= m.off[i]) {
        m.cur[i]->b2 = b2;
        m.cur[i]->peak = std::max(m.cur[i]->peak, x);
      } else {
        m.close(i);  // x < off <= on: no new event can start at this window
      }
      continue;
    }
    if (m.pend[i] && static_cast<double>(a2 - m.pend[i]->b2) / m.rate2 > m.merge_gap) {
      m.emit(i, *m.pend[i], out);
      m.pend[i].reset();
    }
    if (x >= m.on[i]) m.cur[i] = Impl::Span{a2, b2, x};
  }
  return out;
}

std::vector<Event> EventTracker::flush() {
  Impl& m = *impl_;
  std::vector<Event> out;
  if (m.closed) return out;
  m.closed = true;
  for (std::size_t i = 0; i < m.labels.size(); ++i) {
    if (m.cur[i]) m.close(i);
    if (m.pend[i]) m.emit(i, *m.pend[i], out);
    m.pend[i].reset();
  }
  return out;
}

}  // namespace ast
