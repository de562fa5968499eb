// `yesod-worker run` against a real PostgreSQL: startup checks, the startup line, clean stops.
#include <signal.h>

#include <gtest/gtest.h>

#include "support/pg_fixture.hpp"
#include "support/process.hpp"

namespace yw::test {
namespace {

ProcessOptions worker_env(const PgBossSchema& schema) {
  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-run");
  opts.env = {{"DATABASE_URL", schema.url()},
              {"PGBOSS_SCHEMA", schema.name()},
              {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "off"}};
  opts.unset_env = {"NODE_ENV"};
  return opts;
}

TEST(RunTest, StartsLogsAndStopsCleanlyOnSigterm) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  BackgroundProcess worker({worker_binary(), "run"}, worker_env(schema));
  ASSERT_TRUE(worker.wait_for_err("started", std::chrono::seconds(30))) << worker.err_so_far();
  worker.signal(SIGTERM);
  const auto r = worker.wait(std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("schema_version=46"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("device=cpu"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SIGTERM"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped cleanly"), std::string::npos) << r.err;
}

TEST(RunTest, ProductionLogsAreJsonAndMaskThePassword) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  auto opts = worker_env(schema);
  opts.env["NODE_ENV"] = "production";
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("\"msg\":\"started\"", std::chrono::seconds(30)))
      << worker.err_so_far();
  worker.signal(SIGINT);
  const auto r = worker.wait(std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("{\"time\":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"level\":\"info\""), std::string::npos) << r.err;
}

TEST(RunTest, MissingSchemaExitsTwoNamingTheFix) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema(/*install=*/false);
  const auto r = run_process({worker_binary(), "run"}, worker_env(schema));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("pg-boss migrate"), std::string::npos) << r.err;
}

TEST(RunTest, WrongSchemaVersionExitsTwoNamingBothNumbers) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  schema.exec("UPDATE " + schema.name() + ".version SET version = 40");
  const auto r = run_process({worker_binary(), "run"}, worker_env(schema));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("version 40"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("version 46"), std::string::npos) << r.err;
}

TEST(RunTest, UnreachableDatabaseExitsOneWithoutThePassword) {
  // Port 1 on loopback refuses connections at once.
  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-run");
  opts.env = {{"DATABASE_URL", "postgresql://u:hunter2@127.0.0.1:1/db?connect_timeout=2"},
              {"YW_DEVICE", "cpu"}};
  const auto r = run_process({worker_binary(), "run"}, opts);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

TEST(RunTest, UnusableCudaDeviceIsAStartupError) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  auto opts = worker_env(schema);
  opts.env["YW_DEVICE"] = "cuda:7";
  const auto r = run_process({worker_binary(), "run"}, opts);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("cuda:7"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace yw::test
