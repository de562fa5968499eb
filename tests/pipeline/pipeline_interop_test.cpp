// The whole device pipeline against the real pg-boss (label interop): Node sends 60
// fingerprint_audio and 6 separate_stems jobs; the executor runs them with the real handlers, whose
// device work goes through the batchers (fingerprint signals of concurrent jobs in one call,
// segments of several songs in one model batch). The metrics must show batches larger than one,
// and every output must equal the same job run one at a time.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <sndfile.h>

#include "models/torch_models.hpp"
#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/worker/executor.hpp"
#include "yw/worker/handler.hpp"
#include "yw/worker/metrics.hpp"

namespace yw::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json node(const std::string& command, const std::string& url, const std::string& schema,
          const json& input) {
  test::ProcessOptions opts;
  opts.stdin_data = input.dump();
  const auto r =
      test::run_process({"node", std::string(YW_SOURCE_DIR) + "/tests/pipeline/pipeline_tool.mjs",
                         command, url, schema},
                        opts, std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

// Interleaved float samples of a stereo file, as libsndfile reads them.
std::vector<float> read_samples(const fs::path& path, int* rate = nullptr) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  EXPECT_NE(f, nullptr) << path;
  if (f == nullptr) return {};
  std::vector<float> s(static_cast<std::size_t>(info.frames * info.channels));
  sf_readf_float(f, s.data(), info.frames);
  sf_close(f);
  if (rate != nullptr) *rate = info.samplerate;
  return s;
}

// Mean over histogram observations of one stage: above 1 means batches held several items.
double mean_batch(const std::string& stage) {
  const auto& m = Metrics::global();
  const auto n = m.count("yw_batch_size", {{"stage", stage}});
  return n == 0 ? 0.0 : m.value("yw_batch_size", {{"stage", stage}}) / static_cast<double>(n);
}

TEST(PipelineInteropTest, BatchedJobsEqualTheSameJobsOneAtATime) {
  YW_REQUIRE_DATABASE();
  set_log_level(LogLevel::warn);
  test::PgBossSchema schema;
  const fs::path dir = test::make_temp_dir("yw-pipeline");
  fs::create_directories(dir / "in");

  // 60 short songs for fingerprints (tones and noise, 16-bit WAV), 6 for stems.
  std::vector<fs::path> fp_files, sep_files;
  for (int i = 0; i < 60; ++i) {
    const fs::path f = dir / "in" / fmt::format("fp{}.wav", i);
    const auto r =
        test::run_process({"sox", "-n", "-r", i % 2 ? "22050" : "44100", "-c", i % 3 ? "2" : "1",
                           "-b", "16", f.string(), "synth", "5", i % 4 ? "sine" : "pinknoise",
                           std::to_string(200 + 37 * i), "vol", "0.5"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fp_files.push_back(f);
  }
  for (int i = 0; i < 6; ++i) {
    const fs::path f = dir / "in" / fmt::format("sep{}.wav", i);
    const auto r = test::run_process({"sox", "-n", "-r", "22050", "-c", "2", "-b", "16", f.string(),
                                      "synth", "4", "pluck", std::to_string(110 + 40 * i), "synth",
                                      "4", "pinknoise", "mix", "vol", "0.4"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    sep_files.push_back(f);
  }
  const std::string model = (dir / "conv.pt").string();
  test::TorchModelSpec spec;
  spec.sample_rate = 22050;
  spec.sources = {"a", "b"};
  test::save_conv_model(model, spec, {16, 32}, 7);

  WorkerConfig config;
  config.input_roots = {(dir / "in").string()};
  config.output_uri = "file://" + (dir / "out").string();
  config.model = model;
  config.batch_max = 8;
  config.batch_delay_ms = 200;
  config.concurrency = 16;
  config.queue_concurrency = {{"separate_stems", 6}};
  HandlerRegistry registry;
  register_all_handlers(registry);

  queue::ConnectionPool pool({.url = schema.url(), .max_size = 8});
  queue::PgBossClient client(pool, schema.name());
  ExecutorOptions opt = ExecutorOptions::from_config(config);
  opt.queues = {"fingerprint_audio", "separate_stems"};
  opt.config = &config;
  opt.poll_interval = std::chrono::milliseconds(200);
  // Queues exist before Node sends, so the jobs are waiting when the executor first fetches.
  client.create_queue("fingerprint_audio");
  client.create_queue("separate_stems");

  json to_send = json::array();
  for (std::size_t i = 0; i < fp_files.size(); ++i)
    to_send.push_back({{"queue", "fingerprint_audio"},
                       {"data", {{"audio", "file://" + fp_files[i].string()}, {"record_id", i}}}});
  for (std::size_t i = 0; i < sep_files.size(); ++i)
    to_send.push_back({{"queue", "separate_stems"},
                       {"data",
                        {{"audio", "file://" + sep_files[i].string()},
                         {"record_id", fmt::format("song{}", i)},
                         {"format", "wav"}}}});
  const json ids = node("send", schema.url(), schema.name(), to_send);
  ASSERT_EQ(ids.size(), 66u);

  Executor executor(client, registry, opt);
  executor.start();
  json wanted = json::array();
  for (std::size_t i = 0; i < ids.size(); ++i)
    wanted.push_back({{"queue", to_send[i]["queue"]}, {"id", ids[i]}});
  json jobs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (std::chrono::steady_clock::now() < deadline) {
    jobs = node("get", schema.url(), schema.name(), wanted);
    int done = 0;
    for (const auto& j : jobs)
      done += j["state"] == "completed" || j["state"] == "failed";
    if (done == 66) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  executor.stop_fetching();
  executor.join(std::chrono::seconds(10));

  const double fp_batch = mean_batch("fingerprint");
  const double sep_batch = mean_batch("separation");
  std::printf("mean batch: fingerprint %.2f signals, separation %.2f segments\n", fp_batch,
              sep_batch);
  EXPECT_GT(fp_batch, 1.0) << "fingerprint jobs were batched";
  EXPECT_GT(sep_batch, 1.0) << "separation segments of several songs were batched";

  // Fingerprints: the batched results equal the one-file-at-a-time CPU path.
  for (std::size_t i = 0; i < fp_files.size(); ++i) {
    const json& j = jobs[i];
    ASSERT_EQ(j["state"], "completed") << j.dump();
    const FileFingerprint alone = fingerprint_file(fp_files[i], 120.0);
    EXPECT_EQ(j["output"]["fingerprint"], alone.fingerprint) << fp_files[i];
    EXPECT_EQ(j["output"]["record_id"], i);
  }
  // Stems: equal to the CLI separating each song alone, one segment per forward.
  for (std::size_t i = 0; i < sep_files.size(); ++i) {
    const json& j = jobs[fp_files.size() + i];
    ASSERT_EQ(j["state"], "completed") << j.dump();
    const fs::path alone = dir / fmt::format("alone{}", i);
    const auto r = test::run_process({test::worker_binary(), "separate", sep_files[i].string(),
                                      "--out", alone.string(), "--model", model, "--format", "wav",
                                      "--batch-max", "1", "--device", "cpu"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const std::string stem : {"a", "b"}) {
      const std::string uri = j["output"]["stems"][stem];
      ASSERT_TRUE(uri.starts_with("file://")) << uri;
      const auto batched = read_samples(uri.substr(7));
      const auto single = read_samples(alone / sep_files[i].stem() / (stem + ".wav"));
      ASSERT_EQ(batched.size(), single.size()) << uri;
      float worst = 0;
      for (std::size_t k = 0; k < batched.size(); ++k)
        worst = std::max(worst, std::fabs(batched[k] - single[k]));
      EXPECT_LT(worst, 1e-4f) << uri;
    }
  }
}

}  // namespace
}  // namespace yw::worker
