// The real worker binary behind Debian's real pgbouncer (started here like PostgreSQL), in
// session and transaction mode, with a pgbouncer restart in the middle of a drain: every job is
// run exactly once (one "job started" per job in the worker's log) and completed, nothing is left
// active, and the worker says which mode it found (real-world.md §3).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kPgbouncer = "/usr/sbin/pgbouncer";

// host and port of TEST_DATABASE_URL (postgresql://user@host:port/db).
std::pair<std::string, std::string> server_of(const std::string& url) {
  pqxx::connection c(url);
  return {c.hostname() != nullptr ? c.hostname() : "127.0.0.1",
          c.port() != nullptr ? c.port() : "5432"};
}

// One pgbouncer in front of the test database. As root it runs as `postgres` (pgbouncer
// refuses root, as initdb does).
class Pgbouncer {
 public:
  explicit Pgbouncer(const std::string& mode, int pool_size = 20) : port_(free_loopback_port()) {
    dir_ = make_temp_dir("yw-pgbouncer");
    ::chmod(dir_.c_str(), 0755);
    const auto [host, port] = server_of(test_database_url());
    pqxx::connection c(test_database_url());
    const std::string user = c.username();
    const std::string db = c.dbname();
    std::ofstream(dir_ + "/users.txt") << "\"" << user << "\" \"\"\n";
    std::ofstream(dir_ + "/pgbouncer.ini")
        << "[databases]\n"
        << db << " = host=" << host << " port=" << port << " dbname=" << db << "\n"
        << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port_
        << "\nunix_socket_dir =\nauth_type = trust\nauth_file = " << dir_
        << "/users.txt\npool_mode = " << mode << "\ndefault_pool_size = " << pool_size
        << "\nmax_client_conn = 200\n"
           "ignore_startup_parameters = extra_float_digits,options\n";
    ::chmod((dir_ + "/users.txt").c_str(), 0644);
    ::chmod((dir_ + "/pgbouncer.ini").c_str(), 0644);
    url_ = "postgresql://" + user + "@127.0.0.1:" + std::to_string(port_) + "/" + db;
    start();
  }
  ~Pgbouncer() {
    stop();
    fs::remove_all(dir_);
  }
  const std::string& url() const { return url_; }
  void start() {
    std::vector<std::string> argv = {kPgbouncer, dir_ + "/pgbouncer.ini"};
    if (::getuid() == 0) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
    proc_ = std::make_unique<BackgroundProcess>(argv);
    for (int i = 0; i < 100; ++i) {
      try {
        pqxx::connection c(url_);
        return;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(50ms);
      }
    }
    FAIL() << "pgbouncer did not start: " << proc_->err_so_far();
  }
  // SIGTERM: pgbouncer's immediate shutdown; every client and server connection is cut.
  void stop() {
    if (!proc_) return;
    proc_->signal(SIGTERM);
    proc_->wait(10s);
    proc_.reset();
  }

 private:
  int port_;
  std::string dir_, url_;
  std::unique_ptr<BackgroundProcess> proc_;
};

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

void drain_through(const std::string& mode) {
  PgBossSchema schema;
  Pgbouncer bouncer(mode);
  if (::testing::Test::HasFatalFailure()) return;
  // The queue is created before the worker (which leaves it as it is) with a short expiry, so a
  // claim whose answer the restart cut off comes back after 5 s instead of 15 minutes: it was
  // never run, so it still runs exactly once.
  queue::ConnectionPool direct_pool({.url = schema.url(), .max_size = 2});
  queue::PgBossClient direct(direct_pool, schema.name());
  direct.create_queue("process_new_record__dead", {{"policy", "standard"}});
  direct.create_queue("process_new_record", {{"policy", "standard"},
                                             {"deadLetter", "process_new_record__dead"},
                                             {"notify", true},
                                             {"expireInSeconds", 5}});

  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-pgbouncer-run");
  opts.env = {{"DATABASE_URL", bouncer.url()},     {"PGBOSS_SCHEMA", schema.name()},
              {"YW_QUEUES", "process_new_record"}, {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "off"},          {"YW_LOG_LEVEL", "info"}};
  opts.unset_env = {"NODE_ENV", "YW_DB_POOL_MODE"};
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", 30s)) << worker.err_so_far();

  constexpr int kJobs = 300;
  const auto send = [&](int from, int to) {
    for (int i = from; i < to; ++i)
      ASSERT_TRUE(direct.send("process_new_record", {json{{"record_id", i}}, json::object()}));
  };
  const auto count = [&](const std::string& where) {
    pqxx::connection c(schema.url());
    pqxx::nontransaction tx(c);
    return tx
        .exec1("SELECT count(*) FROM " + schema.name() +
               ".job WHERE name = 'process_new_record' AND " + where)[0]
        .as<int>();
  };
  send(0, 200);
  // Mid-drain: some done, some not.
  for (int i = 0; i < 400 && count("state = 'completed'") < 20; ++i)
    std::this_thread::sleep_for(10ms);
  bouncer.stop();
  std::this_thread::sleep_for(1s);
  send(200, kJobs);  // sent while the pooler is down
  bouncer.start();
  const auto until = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < until && count("state = 'completed'") < kJobs)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(count("state = 'completed'"), kJobs) << worker.err_so_far();
  EXPECT_EQ(count("state <> 'completed'"), 0);

  worker.signal(SIGTERM);
  const ProcessResult r = worker.wait(30s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Exactly once: one start per job in the worker's log, none started twice.
  EXPECT_EQ(count_of(r.err, "job started"), kJobs) << r.err;
  const bool transaction = mode == "transaction";
  EXPECT_EQ(count_of(r.err, "transaction-mode pooler"), transaction ? 1 : 0) << r.err;
  EXPECT_EQ(count_of(r.err, "finding jobs by polling"), transaction ? 1 : 0) << r.err;
  EXPECT_EQ(count_of(r.err, "already exists"), 0) << "no named statement met another: " << r.err;
}

class PgbouncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    YW_REQUIRE_DATABASE();
    if (!fs::exists(kPgbouncer)) {
      if (std::getenv("CI") != nullptr) FAIL() << "pgbouncer is not installed";
      GTEST_SKIP() << "pgbouncer is not installed (scripts/lib/deps.sh installs it)";
    }
  }
};

TEST_F(PgbouncerTest, SessionModeDrainsEveryJobExactlyOnceAcrossAPoolerRestart) {
  drain_through("session");
}

TEST_F(PgbouncerTest, TransactionModeDrainsEveryJobExactlyOnceAcrossAPoolerRestart) {
  drain_through("transaction");
}

// real-world.md §3: with a small session pool a second worker starved (it never logged
// "started") and ignored SIGTERM for 20 s. Here the test itself holds all 3 server connections of
// a session pool, so the worker's start-up statements wait in pgbouncer's queue; SIGTERM must
// still end it, cleanly, within its shutdown timeout.
TEST_F(PgbouncerTest, AStarvedWorkerStillStopsWithinItsShutdownTimeout) {
  PgBossSchema schema;
  Pgbouncer bouncer("session", 3);
  if (::testing::Test::HasFatalFailure()) return;
  std::vector<std::unique_ptr<pqxx::connection>> holders;
  for (int i = 0; i < 3; ++i) {
    holders.push_back(std::make_unique<pqxx::connection>(bouncer.url()));
    pqxx::nontransaction(*holders.back()).exec("SELECT 1");  // takes a server connection
  }
  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-pgbouncer-starve");
  opts.env = {{"DATABASE_URL", bouncer.url()},
              {"PGBOSS_SCHEMA", schema.name()},
              {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "off"},
              {"YW_SHUTDOWN_TIMEOUT_S", "2"}};
  opts.unset_env = {"NODE_ENV", "YW_QUEUES", "YW_DB_POOL_MODE"};
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(count_of(worker.err_so_far(), "started"), 0) << "not starved: " << worker.err_so_far();
  const auto t0 = std::chrono::steady_clock::now();
  worker.signal(SIGTERM);
  const ProcessResult r = worker.wait(60s);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(took, 3s) << r.err;
  EXPECT_NE(r.err.find("before the database answered"), std::string::npos) << r.err;
}

// /readyz behind a starved pooler (real-world.md §3): the worker's statements wait in pgbouncer's
// queue, and readiness answers 503 within seconds, naming the pool, instead of hanging the probe;
// once the pooler has a free server connection again it answers 200; and SIGTERM while starved
// still stops the worker within its shutdown timeout.
TEST_F(PgbouncerTest, ReadinessTurnsDownWithinSecondsWhileThePoolerIsStarved) {
  PgBossSchema schema;
  Pgbouncer bouncer("transaction", 2);
  if (::testing::Test::HasFatalFailure()) return;
  const int port = free_loopback_port();
  ProcessOptions opts;
  opts.cwd = make_temp_dir("yw-pgbouncer-ready");
  opts.env = {{"DATABASE_URL", bouncer.url()},
              {"PGBOSS_SCHEMA", schema.name()},
              {"YW_QUEUES", "process_new_record"},
              {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "127.0.0.1:" + std::to_string(port)},
              {"YW_SHUTDOWN_TIMEOUT_S", "2"}};
  opts.unset_env = {"NODE_ENV", "YW_DB_POOL_MODE"};
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("started", 30s)) << worker.err_so_far();
  std::string ready;
  for (int i = 0; i < 50 && !ready.starts_with("HTTP/1.1 200"); ++i) {
    ready = http_get(port, "/readyz");
    if (!ready.starts_with("HTTP/1.1 200")) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(ready.starts_with("HTTP/1.1 200")) << ready;

  // In transaction mode an open transaction keeps its server connection: hold both.
  std::vector<std::unique_ptr<pqxx::connection>> conns;
  std::vector<std::unique_ptr<pqxx::work>> held;
  for (int i = 0; i < 2; ++i) {
    conns.push_back(std::make_unique<pqxx::connection>(bouncer.url()));
    held.push_back(std::make_unique<pqxx::work>(*conns.back()));
    held.back()->exec("SELECT 1");
  }
  const auto t0 = std::chrono::steady_clock::now();
  ready = http_get(port, "/readyz");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(ready.starts_with("HTTP/1.1 503")) << ready;
  EXPECT_NE(ready.find("database: no answer for "), std::string::npos) << ready;
  EXPECT_NE(ready.find("worker's pool"), std::string::npos) << ready;
  EXPECT_LT(took, 4s) << ready;

  held.clear();  // rolled back: the server connections are free again
  for (int i = 0; i < 100 && !ready.starts_with("HTTP/1.1 200"); ++i) {
    std::this_thread::sleep_for(100ms);
    ready = http_get(port, "/readyz");
  }
  EXPECT_TRUE(ready.starts_with("HTTP/1.1 200")) << ready;

  // Starved again, SIGTERM: the worker waits its shutdown timeout (2 s here) for the claim, then
  // leaves the waiting statements behind within about a second (17 s before), with a margin for
  // a loaded machine.
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<pqxx::work>(*conns[static_cast<std::size_t>(i)]));
    held.back()->exec("SELECT 1");
  }
  std::this_thread::sleep_for(2500ms);  // the fetch loop's next poll is waiting in the pooler
  const auto t1 = std::chrono::steady_clock::now();
  worker.signal(SIGTERM);
  const ProcessResult r = worker.wait(60s);
  const auto stop_took = std::chrono::steady_clock::now() - t1;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(stop_took, 6s) << r.err;
}

TEST_F(PgbouncerTest, ProbeTellsTransactionModeFromSessionMode) {
  Pgbouncer session("session");
  Pgbouncer transaction("transaction");
  EXPECT_EQ(queue::probe_pooler_mode(test_database_url()), queue::PoolerMode::session);
  EXPECT_EQ(queue::probe_pooler_mode(session.url()), queue::PoolerMode::session);
  EXPECT_EQ(queue::probe_pooler_mode(transaction.url()), queue::PoolerMode::transaction);
}

}  // namespace
}  // namespace yw::test
