// `yesod-worker run` against a real PostgreSQL: startup checks, the startup line, clean stops.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

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

TEST(RunTest, AMissingModelIsAStartupError) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  auto opts = worker_env(schema);
  opts.env["YW_MODEL"] = opts.cwd + "/no-such-model.pt";
  const auto r = run_process({worker_binary(), "run"}, opts);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no-such-model.pt"), std::string::npos) << r.err;
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

namespace yw::test {
namespace {

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

TEST(RunOpsTest, ServesMetricsHealthAndReadiness) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  const int port = free_port();
  auto opts = worker_env(schema);
  opts.env["YW_METRICS_ADDR"] = "127.0.0.1:" + std::to_string(port);
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", std::chrono::seconds(30))) << worker.err_so_far();

  EXPECT_TRUE(http_get(port, "/healthz").starts_with("HTTP/1.1 200")) << worker.err_so_far();
  const std::string ready = http_get(port, "/readyz");
  EXPECT_TRUE(ready.starts_with("HTTP/1.1 200")) << ready;
  const std::string metrics = http_get(port, "/metrics");
  ASSERT_TRUE(metrics.starts_with("HTTP/1.1 200")) << metrics;
  const std::string body = metrics.substr(metrics.find("\r\n\r\n") + 4);
  EXPECT_NE(body.find("yw_build_info{"), std::string::npos) << body;
  EXPECT_NE(body.find("yw_queue_depth{queue=\"fingerprint_audio\"} 0"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE yw_jobs_total counter"), std::string::npos) << body;
  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    ProcessOptions p;
    p.stdin_data = body;
    const auto r = run_process({"promtool", "check", "metrics"}, p);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // Readiness follows the database: with the schema gone, /readyz says why and answers 503.
  schema.exec("ALTER TABLE " + schema.name() + ".version RENAME TO version_moved");
  const std::string unready = http_get(port, "/readyz");
  EXPECT_TRUE(unready.starts_with("HTTP/1.1 503")) << unready;
  EXPECT_NE(unready.find("database:"), std::string::npos) << unready;
  schema.exec("ALTER TABLE " + schema.name() + ".version_moved RENAME TO version");
  EXPECT_TRUE(http_get(port, "/readyz").starts_with("HTTP/1.1 200"));

  worker.signal(SIGTERM);
  const auto r = worker.wait(std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(RunOpsTest, ABusyMetricsPortIsAConfigurationError) {
  YW_REQUIRE_DATABASE();
  PgBossSchema schema;
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::listen(s, 1);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  auto opts = worker_env(schema);
  opts.env["YW_METRICS_ADDR"] = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const auto r = run_process({worker_binary(), "run"}, opts);
  ::close(s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("YW_METRICS_ADDR"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace yw::test
