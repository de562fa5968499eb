#include "yw/worker/metrics.hpp"

#include <cmath>

#include <fmt/format.h>

#include "yw/worker/build_info.hpp"

namespace yw::worker {
namespace {

std::string escape_label(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{}", v);
}

// Inserts `extra` (already rendered, e.g. le="0.5") into a rendered label set.
std::string with_label(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += escape_label(labels[i].second);
    out += '"';
  }
  out += '}';
  return out;
}

std::vector<double> duration_buckets_seconds() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

std::vector<double> batch_size_buckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256};
}

void Metrics::describe(std::string name, std::string type, std::string help,
                       std::vector<double> buckets) {
  std::lock_guard lock(mutex_);
  auto& f = families_[name];
  f.type = std::move(type);
  f.help = std::move(help);
  f.bounds = std::move(buckets);
}

Metrics::Family& Metrics::family(std::string_view name) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{"untyped", "", {}, {}}).first;
  }
  return it->second;
}

const Metrics::Family* Metrics::find(std::string_view name) const {
  const auto it = families_.find(name);
  return it == families_.end() ? nullptr : &it->second;
}

void Metrics::add(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  family(name).series[render_labels(labels)].value += value;
}

void Metrics::set(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  family(name).series[render_labels(labels)].value = value;
}

void Metrics::observe(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  auto& f = family(name);
  auto& s = f.series[render_labels(labels)];
  if (s.buckets.size() != f.bounds.size()) s.buckets.assign(f.bounds.size(), 0);
  for (std::size_t i = 0; i < f.bounds.size(); ++i)
    if (value <= f.bounds[i]) ++s.buckets[i];
  ++s.count;
  s.value += value;
}

double Metrics::value(std::string_view name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  const Family* f = find(name);
  if (f == nullptr) return 0;
  const auto it = f->series.find(render_labels(labels));
  return it == f->series.end() ? 0 : it->second.value;
}

std::uint64_t Metrics::count(std::string_view name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  const Family* f = find(name);
  if (f == nullptr) return 0;
  const auto it = f->series.find(render_labels(labels));
  return it == f->series.end() ? 0 : it->second.count;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    for (const auto& [labels, s] : f.series) {
      if (f.type == "histogram") {
        // Buckets are stored per bound (not cumulative across bounds) but each bound counts every
        // value <= it, which is already the cumulative count Prometheus expects.
        for (std::size_t i = 0; i < f.bounds.size(); ++i) {
          out +=
              fmt::format("{}_bucket{} {}\n", name,
                          with_label(labels, fmt::format("le=\"{}\"", format_value(f.bounds[i]))),
                          i < s.buckets.size() ? s.buckets[i] : 0);
        }
        out += fmt::format("{}_bucket{} {}\n", name, with_label(labels, "le=\"+Inf\""), s.count);
        out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, labels, format_value(s.value),
                           name, labels, s.count);
      } else {
        out += fmt::format("{}{} {}\n", name, labels, format_value(s.value));
      }
    }
  }
  return out;
}

Metrics& Metrics::global() {
  static Metrics* m = [] {
    auto* r = new Metrics();
    r->describe("yw_jobs_total", "counter",
                "Jobs settled, by queue and outcome (completed, failed, retry, lost).");
    r->describe("yw_job_duration_seconds", "histogram", "Handler time per job, by queue.",
                duration_buckets_seconds());
    r->describe("yw_jobs_in_flight", "gauge", "Jobs currently held by this worker, by queue.");
    r->describe("yw_queue_depth", "gauge", "Jobs waiting (created or retry) in pg-boss, by queue.");
    r->describe("yw_batch_size", "histogram", "Items per device batch, by stage.",
                batch_size_buckets());
    r->describe("yw_device_busy_seconds_total", "counter",
                "Time the device runner spent on batches, by device.");
    r->describe("yw_stage_queue_depth", "gauge",
                "Items waiting between pipeline stages, by stage.");
    r->describe("yw_db_reconnects_total", "counter",
                "Database connections re-established after a loss.");
    r->describe("yw_build_info", "gauge", "Build facts as labels; the value is always 1.");
    const auto& b = build_info();
    r->set("yw_build_info",
           {{"version", b.version},
            {"cuda", b.cuda ? "on" : "off"},
            {"torch", b.torch ? "on" : "off"},
            {"pgboss", b.pgboss}},
           1);
    return r;
  }();
  return *m;
}

}  // namespace yw::worker
