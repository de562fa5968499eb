// process_new_record end to end (label interop): Node (the real pg-boss 12.38.0) sends the job for
// a rendered song, the real `yesod-worker run` completes it and its three children, and Node reads
// every output. Checked against the references: the fingerprint equals fpcalc's, the stems are
// valid audio that sums back to the mixture (built-in separator), the metadata's SHA-256 equals
// sha256sum's and its waveform artifact exists. Bad job data fails terminally naming the field,
// and the worker keeps serving.
#include <signal.h>

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "metadata/metadata_test_util.hpp"
#include "support/pg_fixture.hpp"
#include "yw/kernels/audio.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"
#include "yw/worker/handler.hpp"

namespace yw::test {
namespace {

using nlohmann::json;

std::string script() {
  return std::string(YW_SOURCE_DIR) + "/tests/metadata/record_e2e.mjs";
}

json node(const PgBossSchema& schema, const std::vector<std::string>& args,
          const std::string& stdin_data = "") {
  std::vector<std::string> argv = {"node", script(), args[0], schema.url(), schema.name()};
  argv.insert(argv.end(), args.begin() + 1, args.end());
  ProcessOptions opts;
  opts.stdin_data = stdin_data;
  const auto r = run_process(argv, opts, std::chrono::seconds(240));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto nl = r.out.rfind('\n', r.out.size() - 2);
  try {
    return json::parse(nl == std::string::npos ? r.out : r.out.substr(nl + 1));
  } catch (const std::exception&) {
    ADD_FAILURE() << "node printed no JSON: " << r.out << r.err;
    return nullptr;
  }
}

std::string path_of(const std::string& uri) {
  EXPECT_EQ(uri.rfind("file://", 0), 0u) << uri;
  return uri.substr(7);
}

TEST(RecordEndToEnd, NodeSendsWorkerCompletesParentAndChildren) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  ScratchDir dir("yw-e2e");
  const auto song = dir / "song.wav";
  ASSERT_TRUE(
      run_tool({std::string(YW_SOURCE_DIR) + "/scripts/demo/render_demo.sh", song.string(), "10"}));

  ProcessOptions env;
  env.cwd = dir.path().string();
  env.env = {{"DATABASE_URL", schema.url()},
             {"PGBOSS_SCHEMA", schema.name()},
             {"YW_DEVICE", "cpu"},
             {"YW_METRICS_ADDR", "off"},
             {"YW_INPUT_ROOTS", dir.path().string()},
             {"YW_OUTPUT_URI", "file://" + (dir / "out").string()}};
  env.unset_env = {"NODE_ENV", "YW_MODEL"};
  BackgroundProcess worker({worker_binary(), "run"}, env);
  ASSERT_TRUE(worker.wait_for_err("started", std::chrono::seconds(60))) << worker.err_so_far();

  // Bad data first: each fails at once (no retry although retryLimit allows 3), naming the field.
  const std::vector<std::pair<json, std::string>> bad = {
      {json{{"audio", "file://" + song.string()}}, "record_id: required"},
      {json{{"record_id", 1}, {"audio", 42}}, "audio: expected a URI string"},
      {json{{"record_id", 2}, {"audio", "ftp://host/x.wav"}}, "audio: unsupported URI scheme"}};
  json bad_ids = json::array();
  for (const auto& [data, msg] : bad) {
    const json sent = node(
        schema, {"send", "process_new_record", data.dump(), R"({"retryLimit":3,"retryDelay":1})"});
    bad_ids.push_back({{"queue", "process_new_record"}, {"id", sent["id"]}});
  }
  const json bad_jobs = node(schema, {"wait", "60"}, bad_ids.dump());
  ASSERT_EQ(bad_jobs.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    ASSERT_FALSE(bad_jobs[i].is_null());
    EXPECT_EQ(bad_jobs[i]["state"], "failed") << bad_jobs[i].dump();
    EXPECT_EQ(bad_jobs[i]["retryCount"], 0) << bad_jobs[i].dump();
    EXPECT_NE(bad_jobs[i]["output"]["message"].get<std::string>().find(bad[i].second),
              std::string::npos)
        << bad_jobs[i]["output"].dump();
  }

  // The real record: the worker is still serving.
  const json sent = node(schema, {"send", "process_new_record",
                                  json{{"record_id", "rec-1"},
                                       {"record_type", "song"},
                                       {"audio", "file://" + song.string()},
                                       {"metadata", {{"title", "demo"}}}}
                                      .dump()});
  const json parent =
      node(schema, {"wait", "120"},
           json::array({{{"queue", "process_new_record"}, {"id", sent["id"]}}}).dump())[0];
  ASSERT_EQ(parent["state"], "completed") << parent.dump() << worker.err_so_far();
  const json& jobs = parent["output"]["jobs"];
  EXPECT_EQ(parent["output"]["record_id"], "rec-1");
  ASSERT_TRUE(jobs.contains("metadata") && jobs.contains("fingerprint") && jobs.contains("stems"))
      << parent["output"].dump();

  const json children =
      node(schema, {"wait", "180"},
           json::array({{{"queue", "extract_metadata"}, {"id", jobs["metadata"]}},
                        {{"queue", "fingerprint_audio"}, {"id", jobs["fingerprint"]}},
                        {{"queue", "separate_stems"}, {"id", jobs["stems"]}}})
               .dump());
  ASSERT_EQ(children.size(), 3u);
  for (const auto& c : children) {
    ASSERT_FALSE(c.is_null());
    ASSERT_EQ(c["state"], "completed") << c.dump() << worker.err_so_far();
    EXPECT_EQ(c["output"]["record_id"], "rec-1");
  }

  // Metadata: the file's hash, the song's format, a stored waveform.
  const json& meta = children[0]["output"];
  const auto sha = run_process({"sha256sum", song.string()});
  EXPECT_EQ(meta["sha256"], sha.out.substr(0, 64));
  EXPECT_EQ(meta["format"]["sample_rate"], 44100);
  EXPECT_EQ(meta["format"]["channels"], 2);
  EXPECT_NEAR(meta["format"]["duration_seconds"].get<double>(), 10.0, 1e-3);
  EXPECT_TRUE(meta["loudness"]["integrated_lufs"].is_number());
  std::ifstream wf(path_of(meta["waveform"]));
  ASSERT_TRUE(wf.good()) << meta["waveform"];
  EXPECT_EQ(json::parse(wf)["version"], 2);

  // Fingerprint: exactly fpcalc's.
  const auto fp = run_process({"fpcalc", "-ignore-errors", song.string()});
  ASSERT_EQ(fp.exit_code, 0) << fp.err;
  const auto at = fp.out.find("FINGERPRINT=");
  ASSERT_NE(at, std::string::npos);
  const std::string expected = fp.out.substr(at + 12, fp.out.find('\n', at) - at - 12);
  EXPECT_EQ(children[1]["output"]["fingerprint"], expected);

  // Stems: valid audio that sums back to the mixture.
  const json& stems = children[2]["output"]["stems"];
  ASSERT_GE(stems.size(), 2u) << stems.dump();
  const auto mix = yw::decode_audio(song);
  std::vector<double> sum(mix.samples.size(), 0.0);
  for (const auto& [name, uri] : stems.items()) {
    const auto stem = yw::decode_audio(path_of(uri));
    ASSERT_EQ(stem.info.channels, mix.info.channels) << name;
    ASSERT_EQ(stem.info.sample_rate, mix.info.sample_rate) << name;
    ASSERT_EQ(stem.samples.size(), mix.samples.size()) << name;
    for (size_t i = 0; i < sum.size(); ++i)
      sum[i] += stem.samples[i];
  }
  double signal = 0, error = 0;
  for (size_t i = 0; i < sum.size(); ++i) {
    signal += static_cast<double>(mix.samples[i]) * mix.samples[i];
    error += (sum[i] - mix.samples[i]) * (sum[i] - mix.samples[i]);
  }
  const double snr_db = 10 * std::log10(signal / std::max(error, 1e-30));
  EXPECT_GT(snr_db, 40.0) << "stems do not sum back to the mixture";

  // One set of children, however the parent ran.
  pqxx::connection c(schema.url());
  pqxx::nontransaction tx(c);
  for (const char* q : {"extract_metadata", "fingerprint_audio", "separate_stems"}) {
    EXPECT_EQ(
        tx.exec1("SELECT count(*) FROM " + schema.name() + ".job WHERE name = " + tx.quote(q))[0]
            .as<int>(),
        1)
        << q;
  }

  worker.signal(SIGTERM);
  const auto r = worker.wait(std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The second guard against duplicate children (the first is that children go in the transaction
// that completes the parent, so a failed attempt sends none): the handler names each child with an
// id derived from the parent's, so even two attempts that both got as far as inserting children
// (an expired attempt finishing late) leave one set. Inserted through the worker's own pg-boss
// client, with pg-boss's ON CONFLICT DO NOTHING.
TEST(RecordEndToEnd, TwoAttemptsOfOneParentLeaveOneSetOfChildren) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  yw::queue::ConnectionPool pool(yw::queue::PoolConfig{.url = schema.url(), .max_size = 2});
  yw::queue::PgBossClient client(pool, schema.name());
  for (const char* q : {"extract_metadata", "fingerprint_audio", "separate_stems"})
    client.create_queue(q);

  yw::worker::HandlerRegistry registry;
  yw::worker::register_record_handlers(registry);
  yw::worker::WorkerConfig config;
  const json data = {{"record_id", 5}, {"audio", "https://cdn.example/5.mp3"}};
  json outputs = json::array();
  int inserted = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<yw::worker::JobContext::ChildJob> children;
    yw::worker::JobContext ctx;
    ctx.id = "9b2f7c1e-0000-4000-8000-000000000001";  // the same parent job, two attempts
    ctx.retry_count = attempt;
    ctx.config = &config;
    ctx.children = &children;
    outputs.push_back((*registry.find("process_new_record"))(data, ctx));
    for (const auto& c : children) {
      if (client.send(c.queue, yw::queue::SendJob{c.data, c.options})) ++inserted;
    }
  }
  EXPECT_EQ(outputs[0], outputs[1]);
  EXPECT_EQ(inserted, 3) << "the second attempt's children were all refused as duplicates";
  pqxx::connection c(schema.url());
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema.name() + ".job")[0].as<int>(), 3);
  const std::string meta_id = outputs[0]["jobs"]["metadata"];
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema.name() +
                     ".job WHERE id = " + tx.quote(meta_id) + " AND name = 'extract_metadata'")[0]
                .as<int>(),
            1);
}

}  // namespace
}  // namespace yw::test
