#pragma once
// Prometheus metrics (text exposition format 0.0.4), counted where things happen and exported by
// the HTTP listener (GET /metrics). Thread-safe; counting is a mutex-guarded map update, cheap
// next to a job, and never on a per-sample path.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace yw::worker {

// Label pairs, e.g. {{"queue","fingerprint_audio"},{"outcome","completed"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a metric (idempotent). `type` is counter, gauge or histogram. Histograms take
  // their bucket upper bounds here.
  void describe(std::string name, std::string type, std::string help,
                std::vector<double> buckets = {});

  void add(std::string_view name, const Labels& labels, double value = 1.0);  // counter
  void set(std::string_view name, const Labels& labels, double value);        // gauge
  void observe(std::string_view name, const Labels& labels, double value);    // histogram

  double value(std::string_view name,
               const Labels& labels = {}) const;  // counter/gauge; 0 if unseen
  std::uint64_t count(std::string_view name, const Labels& labels = {}) const;  // histogram count

  // The whole registry in the text exposition format.
  std::string render() const;

  // The process-wide registry, with the worker's metrics already described.
  static Metrics& global();

 private:
  struct Series {
    double value = 0;                    // counter/gauge; histogram sum
    std::uint64_t count = 0;             // histogram
    std::vector<std::uint64_t> buckets;  // histogram, cumulative at render time
  };
  struct Family {
    std::string type, help;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // key: rendered label set
  };
  Family& family(std::string_view name);
  const Family* find(std::string_view name) const;

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

// Renders `{a="x",b="y"}` with Prometheus escaping; "" for no labels.
std::string render_labels(const Labels& labels);

// Standard bucket sets.
std::vector<double> duration_buckets_seconds();
std::vector<double> batch_size_buckets();

}  // namespace yw::worker
