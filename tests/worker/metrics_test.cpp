#include "yw/worker/metrics.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include "support/process.hpp"

namespace yw::worker {
namespace {

// Checks the text exposition format line by line (the grammar of Prometheus' text format 0.0.4):
// HELP/TYPE comments before their samples, valid names and label sets, numeric values, histogram
// buckets ending in le="+Inf" that never decrease.
void expect_valid_exposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  std::istringstream in(text);
  std::string line;
  std::set<std::string> typed;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("# HELP ")) continue;
    std::smatch m;
    if (line.starts_with("# TYPE ")) {
      ASSERT_TRUE(std::regex_match(line, m, kType)) << line;
      EXPECT_TRUE(typed.insert(m[1]).second) << "TYPE given twice: " << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, kSample)) << "not a sample line: '" << line << "'";
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (family.ends_with(suffix) && !typed.contains(family))
        family.resize(family.size() - std::strlen(suffix));
    EXPECT_TRUE(typed.contains(family)) << "sample before its TYPE: " << line;
    ++samples;
  }
  EXPECT_GT(samples, 0);
}

TEST(MetricsTest, CountersGaugesAndHistogramsRender) {
  Metrics m;
  m.describe("yw_jobs_total", "counter", "Jobs.");
  m.describe("yw_depth", "gauge", "Depth.");
  m.describe("yw_seconds", "histogram", "Time.", {0.1, 1});
  m.add("yw_jobs_total", {{"queue", "a"}, {"outcome", "completed"}});
  m.add("yw_jobs_total", {{"queue", "a"}, {"outcome", "completed"}}, 2);
  m.set("yw_depth", {{"queue", "weird \"name\"\n"}}, 7);
  m.observe("yw_seconds", {{"queue", "a"}}, 0.05);
  m.observe("yw_seconds", {{"queue", "a"}}, 0.5);
  m.observe("yw_seconds", {{"queue", "a"}}, 5);
  EXPECT_EQ(m.value("yw_jobs_total", {{"queue", "a"}, {"outcome", "completed"}}), 3);
  EXPECT_EQ(m.count("yw_seconds", {{"queue", "a"}}), 3u);
  const std::string text = m.render();
  expect_valid_exposition(text);
  EXPECT_NE(text.find(R"(yw_jobs_total{queue="a",outcome="completed"} 3)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(yw_seconds_bucket{queue="a",le="0.1"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(yw_seconds_bucket{queue="a",le="1"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(yw_seconds_bucket{queue="a",le="+Inf"} 3)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(yw_seconds_sum{queue="a"} 5.55)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(queue="weird \"name\"\n")"), std::string::npos) << text;
}

TEST(MetricsTest, GlobalRegistryHasTheWorkersMetrics) {
  const std::string text = Metrics::global().render();
  expect_valid_exposition(text);
  for (const char* name :
       {"yw_jobs_total", "yw_job_duration_seconds", "yw_batch_size", "yw_device_busy_seconds_total",
        "yw_queue_depth", "yw_db_reconnects_total", "yw_build_info"})
    EXPECT_NE(text.find(std::string("# TYPE ") + name), std::string::npos) << name;
}

TEST(MetricsTest, PromtoolAcceptsTheExpositionWhenInstalled) {
  // promtool comes with Debian's prometheus package; the grammar check above runs regardless.
  Metrics m;
  m.describe("yw_seconds", "histogram", "Time.", {0.1, 1});
  m.observe("yw_seconds", {{"queue", "a"}}, 0.5);
  m.describe("yw_jobs_total", "counter", "Jobs.");
  m.add("yw_jobs_total", {{"queue", "a"}});
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP()
        << "promtool is not installed; the exposition grammar is checked by the other tests";
  }
  test::ProcessOptions opts;
  opts.stdin_data = m.render();
  const auto r = test::run_process({"promtool", "check", "metrics"}, opts);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace yw::worker
