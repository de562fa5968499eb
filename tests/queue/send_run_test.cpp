// `yesod-worker send` and `yesod-worker run` as processes against a real PostgreSQL (label db).
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "support/pg_fixture.hpp"
#include "support/process.hpp"

namespace yw::test {
namespace {

ProcessOptions env_for(const PgBossSchema& schema) {
  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-send");
  opts.env = {{"DATABASE_URL", schema.url()},
              {"PGBOSS_SCHEMA", schema.name()},
              {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "off"}};
  opts.unset_env = {"NODE_ENV"};
  return opts;
}

std::string one(const PgBossSchema& schema, const std::string& sql) {
  pqxx::connection c(schema.url());
  pqxx::nontransaction tx(c);
  const auto r = tx.exec(sql);
  return r.empty() || r[0][0].is_null() ? std::string() : r[0][0].as<std::string>();
}

TEST(SendCommandTest, SendsWithEveryFlagAndSaysWhenAPolicyRefuses) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  schema.exec("SELECT " + schema.name() + ".create_queue('q', '{\"policy\":\"short\"}')");
  const auto opts = env_for(schema);
  auto r = run_process({worker_binary(), "send", "q", R"({"record_id": 7})", "--priority", "4",
                        "--start-after", "30", "--singleton-key", "k1"},
                       opts);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(id.size(), 36u) << r.out;
  const std::string row =
      one(schema,
          "SELECT json_build_object('data', data, 'priority', priority, 'key', singleton_key, "
          "'delay', round(extract(epoch FROM start_after - created_on)), 'policy', policy)::text "
          "FROM " +
              schema.name() + ".job WHERE id = '" + id + "'");
  const auto j = nlohmann::json::parse(row);
  EXPECT_EQ(j["data"], nlohmann::json({{"record_id", 7}}));
  EXPECT_EQ(j["priority"], 4);
  EXPECT_EQ(j["key"], "k1");
  EXPECT_EQ(j["delay"], 30);
  EXPECT_EQ(j["policy"], "short");
  r = run_process({worker_binary(), "send", "q", "{}", "--singleton-key", "k1"}, opts);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("refused"), std::string::npos) << r.out;
  r = run_process({worker_binary(), "send", "q", "{}", "--start-after", "2031-05-06T07:08:09Z"},
                  opts);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(one(schema,
                "SELECT to_char(start_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
                "FROM " +
                    schema.name() + ".job WHERE id = '" + r.out.substr(0, r.out.find('\n')) + "'"),
            "2031-05-06 07:08");
}

TEST(SendCommandTest, BadInputExitsTwoNamingTheProblem) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  const auto opts = env_for(schema);
  auto r = run_process({worker_binary(), "send", "missing_queue", "{}"}, opts);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("missing_queue"), std::string::npos) << r.err;
  schema.exec("SELECT " + schema.name() + ".create_queue('q', '{\"policy\":\"standard\"}')");
  r = run_process({worker_binary(), "send", "q", "{not json"}, opts);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("data"), std::string::npos) << r.err;
  r = run_process({worker_binary(), "send", "q", "{}", "--start-after", "soon"}, opts);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--start-after"), std::string::npos) << r.err;
}

// The worker process creates its queues with dead-letter queues and fails invalid data
// terminally, with pg-boss's error shape, through the real process_new_record handler.
TEST(RunExecutorTest, CreatesQueuesAndDeadLettersInvalidJobsAtOnce) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  const auto opts = env_for(schema);
  BackgroundProcess worker({worker_binary(), "run", "--queues", "process_new_record"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", std::chrono::seconds(30))) << worker.err_so_far();
  EXPECT_EQ(one(schema, "SELECT dead_letter FROM " + schema.name() +
                            ".queue WHERE name = 'process_new_record'"),
            "process_new_record__dead");
  auto r = run_process({worker_binary(), "send", "process_new_record", R"({"tasks": []})"}, opts);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  std::string state;
  for (int i = 0; i < 100 && state != "failed"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    state =
        one(schema, "SELECT state::text FROM " + schema.name() + ".job WHERE id = '" + id + "'");
  }
  EXPECT_EQ(state, "failed") << worker.err_so_far();
  const auto out = nlohmann::json::parse(
      one(schema, "SELECT output::text FROM " + schema.name() + ".job WHERE id = '" + id + "'"));
  EXPECT_EQ(out["message"], "record_id: required");
  EXPECT_TRUE(out.contains("name") && out.contains("stack")) << out;
  EXPECT_EQ(
      one(schema, "SELECT retry_count FROM " + schema.name() + ".job WHERE id = '" + id + "'"),
      "0");
  EXPECT_EQ(
      one(schema, "SELECT count(*) FROM " + schema.name() +
                      ".job WHERE name = 'process_new_record__dead' AND source_id = '" + id + "'"),
      "1");
  worker.signal(SIGTERM);
  const auto done = worker.wait(std::chrono::seconds(30));
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.err.find("stopped cleanly"), std::string::npos) << done.err;
}

}  // namespace
}  // namespace yw::test
