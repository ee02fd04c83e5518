// ast_golden_check: the golden cases of tests/golden/ (windows, events, manifests) against the C++
// library, for tests/test_golden.py, which holds the Python runtime to the same files.
//
//   ast_golden_check GOLDEN_DIR
//
// Prints one JSON object: per file, the cases checked and a line per failure ("case: what differs").
// Exit status 0 when every case was read (whatever the failures: the Python test judges them), 2 with
// one "error: ..." line when a file cannot be read.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ast/classifier.h"
#include "ast/streaming.h"
#include "ast/windows.h"
#include "manifest.h"

namespace {

using json = nlohmann::json;  // objects compare whatever their key order

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ast::Error(path + ": cannot open");
  return json::parse(in);
}

// The cases checked and the failures found in one golden file.
struct Report {
  std::size_t checked = 0;
  std::vector<std::string> failures;

  void expect(bool ok, const std::string& name, const std::string& what) {
    if (!ok) failures.push_back(name + ": " + what);
  }
  json to_json() const { return {{"checked", checked}, {"failures", failures}}; }
};

// What an ast::Error says, or "" when `call` does not throw.
template <typename Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const ast::Error& e) {
    return e.what();
  }
  return "";
}

std::string show(const std::vector<std::size_t>& values) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << ']';
  return out.str();
}

json check_windows(const json& golden) {
  Report windows, seconds, lengths;
  for (const json& c : golden["windows"]) {
    const std::string name = c["name"];
    const std::size_t n = c["num_samples"], w = c["window"], h = c["hop"];
    const auto starts = c["starts"].get<std::vector<std::size_t>>();
    const auto ends = c["ends"].get<std::vector<std::size_t>>();
    const std::vector<std::size_t> got = ast::window_starts(n, w, h);
    windows.expect(got == starts, name, "starts " + show(got) + ", expected " + show(starts));
    windows.expect(ast::window_count(n, w, h) == starts.size(), name, "window_count");
    windows.expect(ast::regular_window_count(n, w, h) == c["regular"].get<std::size_t>(), name, "regular_window_count");
    const std::optional<std::size_t> closing = ast::closing_window(n, w, h);
    windows.expect(closing ? c["closing"] == *closing : c["closing"].is_null(), name, "closing_window");
    std::vector<std::size_t> got_ends;
    for (std::size_t s : got) got_ends.push_back(ast::window_end(s, w, n));
    windows.expect(got_ends == ends, name, "ends " + show(got_ends) + ", expected " + show(ends));
    ++windows.checked;
  }
  for (const json& c : golden["seconds"]) {
    const double s = c["seconds"];
    const int rate = c["sample_rate"];
    const std::string name = c["seconds"].dump() + " s at " + std::to_string(rate) + " Hz";
    seconds.expect(ast::seconds_to_samples(s, rate) == c["samples"].get<std::size_t>(), name, "seconds_to_samples");
    seconds.expect(ast::hop_length(s, rate, 12345) == c["hop"].get<std::size_t>(), name, "hop_length");
    ++seconds.checked;
  }
  for (const json& c : golden["audio_length"]) {
    const std::size_t n = c["num_samples"];
    const std::string name = std::to_string(n) + " samples";
    const std::string error =
        error_of([&] { ast::check_audio_length(n, c["frame_samples"], c["sample_rate"], "golden"); });
    const std::string expected = c["error"].is_null() ? "" : "golden: " + c["error"].get<std::string>();
    lengths.expect(error == expected, name, "'" + error + "', expected '" + expected + "'");
    ++lengths.checked;
  }
  return {{"windows", windows.to_json()}, {"seconds", seconds.to_json()}, {"audio_length", lengths.to_json()}};
}

json check_events(const json& golden) {
  Report report;
  for (const json& c : golden["cases"]) {
    const std::string name = c["name"];
    const json& config = c["config"];
    ast::EventConfig cfg;
    cfg.threshold = config["threshold"];
    if (!config["off_threshold"].is_null()) cfg.off_threshold = config["off_threshold"].get<double>();
    for (const auto& [index, on_off] : config["thresholds"].items())
      cfg.thresholds[std::stoul(index)] = {on_off[0].get<double>(), on_off[1].get<double>()};
    cfg.min_duration = config["min_duration"];
    cfg.merge_gap = config["merge_gap"];
    ast::EventTracker tracker(c["labels"].get<std::vector<std::string>>(), cfg, c["hop"], c["sample_rate"]);
    std::vector<ast::Event> events;
    for (std::size_t i = 0; i < c["windows"].size(); ++i) {
      const json& span = c["windows"][i];
      for (ast::Event& e : tracker.update(span[0], span[1], c["scores"][i].get<std::vector<float>>()))
        events.push_back(std::move(e));
    }
    for (ast::Event& e : tracker.flush()) events.push_back(std::move(e));
    std::stable_sort(events.begin(), events.end(), [](const ast::Event& a, const ast::Event& b) {
      return a.onset != b.onset ? a.onset < b.onset : a.index < b.index;
    });
    json got = json::array();
    for (const ast::Event& e : events)
      got.push_back(
          {{"label", e.label}, {"index", e.index}, {"onset", e.onset}, {"offset", e.offset}, {"peak", e.peak}});
    report.expect(got == c["events"], name, "events " + got.dump() + ", expected " + c["events"].dump());
    ++report.checked;
  }
  return report.to_json();
}

json check_manifests(const json& golden, const std::string& dir) {
  Report report;
  for (const json& c : golden["cases"]) {
    const std::string name = c["name"];
    const std::string expected_error =
        c.contains("error") ? c["error"].get<std::string>() : c.value("cpp_error", std::string());
    std::optional<ast::detail::Manifest> manifest;
    const std::string path = dir + "/" + c["directory"].get<std::string>();
    const std::string error = error_of([&] { manifest = ast::detail::read_manifest(path); });
    ++report.checked;
    if (!expected_error.empty() || !error.empty()) {
      report.expect(!expected_error.empty() && error.find(expected_error) != std::string::npos, name,
                    "error '" + error + "', expected one with '" + expected_error + "'");
      continue;
    }
    json expected = c["expected"];
    expected.erase("format_version");  // the C++ reader reads format 1 into the same structs, keeping no version
    const ast::detail::Manifest& m = *manifest;
    json artifacts = json::array();
    for (const auto& a : m.artifacts) {
      json names = json::array();
      for (const auto& f : a.files) names.push_back(f.file);
      artifacts.push_back({{"name", a.name}, {"format", a.format}, {"files", names}});
    }
    const json got = {{"kind", m.input_kind},
                      {"sample_rate", m.sample_rate},
                      {"num_samples", m.num_samples},
                      {"window_samples", m.window_samples},
                      {"frame_samples", m.frame_samples},
                      {"batch", {{"min", m.min_batch}, {"opt", m.opt_batch}, {"max", m.max_batch}}},
                      {"labels", m.labels},
                      {"artifacts", artifacts}};
    report.expect(got == expected, name, got.dump() + ", expected " + expected.dump());
  }
  return report.to_json();
}

int run(int argc, char** argv) {
  if (argc != 2) throw ast::Error("usage: ast_golden_check GOLDEN_DIR");
  const std::string dir = argv[1];
  const json out = {{"windows", check_windows(read_json(dir + "/windows.json"))},
                    {"events", check_events(read_json(dir + "/events.json"))},
                    {"manifests", check_manifests(read_json(dir + "/manifests/cases.json"), dir + "/manifests")}};
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
