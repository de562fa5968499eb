// The product binary against the Supabase Storage stand-in (supabase_standin.hpp: answers as the
// real storage-api, real-world.md §2): a storage key the server refuses is this deployment's
// fault, so the job is failed retryably (not dead-lettered), /readyz answers 503 naming the
// reason, and the log says once what to change. While such a fault lasts the queues that use
// storage claim nothing more, so jobs keep their retries, until a probe sees the bucket fixed.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "storage/storage_test_files.hpp"
#include "storage/supabase_standin.hpp"
#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"

namespace yw::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// extract_metadata and its dead-letter queue, created before the worker (which leaves them as
// they are) with the retry settings a test reads the states through.
void create_metadata_queue(const PgBossSchema& schema, int retry_limit, int retry_delay_s) {
  queue::ConnectionPool setup({.url = schema.url(), .max_size = 1});
  queue::PgBossClient c(setup, schema.name());
  c.create_queue("extract_metadata__dead", {{"policy", "standard"}});
  c.create_queue("extract_metadata", {{"policy", "standard"},
                                      {"deadLetter", "extract_metadata__dead"},
                                      {"retryLimit", retry_limit},
                                      {"retryDelay", retry_delay_s}});
}

// `yesod-worker run` serving extract_metadata against the stand-in with `key`, /readyz on `port`.
ProcessOptions worker_options(const PgBossSchema& schema, const SupabaseStandIn& supa, int port,
                              const std::string& key,
                              std::map<std::string, std::string> extra = {}) {
  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-storage-ready");
  opts.env = {{"DATABASE_URL", schema.url()},
              {"PGBOSS_SCHEMA", schema.name()},
              {"YW_QUEUES", "extract_metadata"},
              {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "127.0.0.1:" + std::to_string(port)},
              {"SUPABASE_URL", supa.url()},
              {"SUPABASE_SERVICE_ROLE_KEY", key}};
  for (auto& [k, v] : extra)
    opts.env[k] = std::move(v);
  opts.unset_env = {"NODE_ENV", "SUPABASE_ANON_KEY"};
  return opts;
}

TEST(StorageReadinessTest, ARefusedKeyFailsTheJobRetryablyAndTurnsReadinessDown) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  SupabaseStandIn supa;
  supa.add_bucket("tracks", {.is_public = false, .allowed_mime_types = {}, .file_size_limit = -1});
  supa.put_object("tracks/u/song.wav", some_audio(2000));
  // A retry delay, so the state after the first attempt can be read: `retry` (a terminal
  // failure would be `failed` at once).
  create_metadata_queue(schema, 3, 60);
  const int port = free_loopback_port();
  const ProcessOptions opts = worker_options(schema, supa, port, "expired-key");
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", 30s)) << worker.err_so_far();
  EXPECT_TRUE(http_get(port, "/readyz").starts_with("HTTP/1.1 200"));

  queue::ConnectionPool pool({.url = schema.url(), .max_size = 1});
  queue::PgBossClient client(pool, schema.name());
  const auto id = client.send("extract_metadata",
                              {json{{"audio", "supabase://tracks/u/song.wav"}}, json::object()});
  ASSERT_TRUE(id);
  std::string ready;
  for (int i = 0; i < 150; ++i) {
    ready = http_get(port, "/readyz");
    if (ready.starts_with("HTTP/1.1 503")) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ready.starts_with("HTTP/1.1 503")) << ready;
  EXPECT_NE(ready.find("storage.download: "), std::string::npos) << ready;
  EXPECT_NE(ready.find("SUPABASE_SERVICE_ROLE_KEY has expired"), std::string::npos) << ready;

  json job;
  for (int i = 0; i < 100; ++i) {
    job = client.get_job("extract_metadata", *id);
    if (job["state"] != "active" && job["state"] != "created") break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(job["state"], "retry") << job.dump();

  worker.signal(SIGTERM);
  const ProcessResult r = worker.wait(30s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_of(r.err, "storage: misconfigured: "), 1) << r.err;
}

// A missing output bucket is the deployment's fault: the jobs in flight spend one attempt, then
// claims wait (with retryLimit 1 and no retry delay a second attempt would dead-letter them at
// once) until the probe sees the bucket, and every job then completes.
TEST(StorageReadinessTest, AMissingOutputBucketHoldsClaimsUntilTheBucketExists) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  SupabaseStandIn supa;
  supa.add_bucket("tracks", {.is_public = false, .allowed_mime_types = {}, .file_size_limit = -1});
  supa.put_object("tracks/u/song.wav", tone_wav(22050, 3000));
  create_metadata_queue(schema, 1, 0);
  const int port = free_loopback_port();
  const ProcessOptions opts = worker_options(schema, supa, port, "service-key",
                                             {{"YW_OUTPUT_URI", "supabase://artifacts/yesod"}});
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", 30s)) << worker.err_so_far();

  queue::ConnectionPool pool({.url = schema.url(), .max_size = 1});
  queue::PgBossClient client(pool, schema.name());
  constexpr int kJobs = 6;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    const auto id = client.send(
        "extract_metadata",
        {json{{"record_id", i}, {"audio", "supabase://tracks/u/song.wav"}}, json::object()});
    ASSERT_TRUE(id);
    ids.push_back(*id);
  }
  std::string ready;
  for (int i = 0; i < 300 && !ready.starts_with("HTTP/1.1 503"); ++i) {
    std::this_thread::sleep_for(100ms);
    ready = http_get(port, "/readyz");
  }
  ASSERT_TRUE(ready.starts_with("HTTP/1.1 503")) << ready << worker.err_so_far();
  EXPECT_NE(ready.find("storage.upload: "), std::string::npos) << ready;
  EXPECT_NE(ready.find("output bucket 'artifacts' does not exist"), std::string::npos) << ready;
  // Longer than a probe interval, so the probe has seen the bucket missing; without the hold
  // every job would have been retried and dead-lettered by now.
  std::this_thread::sleep_for(7s);
  const auto states = [&] {
    std::map<std::string, int> n;
    for (const auto& id : ids)
      ++n[client.get_job("extract_metadata", id)["state"].get<std::string>()];
    return n;
  };
  auto held = states();
  EXPECT_EQ(held["failed"], 0) << worker.err_so_far();
  EXPECT_EQ(held["completed"], 0);
  const std::vector<std::string> requests = supa.requests();
  const auto uploads_before = std::count_if(requests.begin(), requests.end(), [](const auto& r) {
    return r.starts_with("POST /storage/v1/object/artifacts/");
  });
  EXPECT_LE(uploads_before, kJobs) << "no job was tried twice while held";

  supa.add_bucket("artifacts",
                  {.is_public = false, .allowed_mime_types = {}, .file_size_limit = -1});
  std::map<std::string, int> done;
  for (int i = 0; i < 300 && done["completed"] < kJobs; ++i) {
    std::this_thread::sleep_for(100ms);
    done = states();
  }
  EXPECT_EQ(done["completed"], kJobs) << worker.err_so_far();
  for (int i = 0; i < 50 && !ready.starts_with("HTTP/1.1 200"); ++i) {
    ready = http_get(port, "/readyz");
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ready.starts_with("HTTP/1.1 200")) << ready;

  worker.signal(SIGTERM);
  const ProcessResult r = worker.wait(30s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_of(r.err, "not claiming until this is fixed"), 1) << r.err;
  EXPECT_EQ(count_of(r.err, "claims resume"), 1) << r.err;
  EXPECT_EQ(count_of(r.err, "claiming again"), 1) << r.err;
}

}  // namespace
}  // namespace yw::test
