// The executor against a real PostgreSQL with the pinned pg-boss schema (label db): handlers are
// registered by the tests themselves.
#include "yw/worker/executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <pqxx/pqxx>

#include "support/pg_fixture.hpp"
#include "yw/common/error.hpp"

namespace yw::worker {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

template <typename Pred>
bool eventually(Pred pred, milliseconds timeout = milliseconds(15'000)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(25));
  }
  return pred();
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    YW_REQUIRE_DATABASE();
    schema_ = std::make_unique<test::PgBossSchema>();
    pool_ = std::make_unique<queue::ConnectionPool>(
        queue::PoolConfig{.url = schema_->url(), .max_size = 8});
    client_ = std::make_unique<queue::PgBossClient>(*pool_, schema_->name());
  }
  void TearDown() override {
    executor_.reset();
    client_.reset();
    pool_.reset();
  }

  Executor& start(ExecutorOptions opt) {
    opt.sweep_interval =
        opt.sweep_interval == milliseconds(10'000) ? milliseconds(500) : opt.sweep_interval;
    executor_ = std::make_unique<Executor>(*client_, registry_, std::move(opt));
    executor_->start();
    return *executor_;
  }
  std::string state(const std::string& q, const std::string& id) {
    const json j = client_->get_job(q, id);
    return j.is_null() ? "" : j["state"].get<std::string>();
  }
  int count(const std::string& where) {
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    return tx.exec1(fmt::format("SELECT count(*) FROM {}.job WHERE {}", schema_->name(), where))[0]
        .as<int>();
  }

  HandlerRegistry registry_;
  std::unique_ptr<test::PgBossSchema> schema_;
  std::unique_ptr<queue::ConnectionPool> pool_;
  std::unique_ptr<queue::PgBossClient> client_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(ExecutorTest, CompletesEachJobWithItsOwnOutputAndCreatesTheQueues) {
  registry_.add("echo", [](const json& data, JobContext& ctx) {
    return json{{"got", data}, {"retry_count", ctx.retry_count}};
  });
  registry_.add("scalar", [](const json& data, JobContext&) { return data["n"]; });
  ExecutorOptions opt;
  opt.concurrency = 3;
  auto& ex = start(opt);
  EXPECT_EQ(client_->queue("echo").dead_letter, std::optional<std::string>("echo__dead"));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(*client_->send("echo", {json{{"i", i}}, json::object()}));
  const auto s = *client_->send("scalar", {json{{"n", 5}}, json::object()});
  ASSERT_TRUE(eventually([&] { return count("state = 'completed'") == 21; }));
  for (int i = 0; i < 20; ++i) {
    const json j = client_->get_job("echo", ids[i]);
    EXPECT_EQ(j["output"], json({{"got", {{"i", i}}}, {"retry_count", 0}}));
  }
  EXPECT_EQ(client_->get_job("scalar", s)["output"], json({{"value", 5}}));
  EXPECT_EQ(ex.stats().completed, 21u);
  EXPECT_EQ(ex.in_flight(), 0);
}

TEST_F(ExecutorTest, RespectsTheConcurrencyLimit) {
  std::atomic<int> now{0}, peak{0};
  registry_.add("slow", [&](const json&, JobContext&) {
    const int n = ++now;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
    std::this_thread::sleep_for(milliseconds(50));
    --now;
    return json::object();
  });
  ExecutorOptions opt;
  opt.concurrency = 8;
  opt.queue_concurrency = {{"slow", 3}};
  start(opt);
  for (int i = 0; i < 15; ++i)
    client_->send("slow", {json{{"i", i}}, json::object()});
  ASSERT_TRUE(eventually([&] { return count("state = 'completed'") == 15; }));
  EXPECT_EQ(peak.load(), 3);
}

// YW_GROUP_CONCURRENCY reaches every fetch of its queue: with 6 slots, group "a" (limit 1)
// and group "b" (tier "pro", limit 2) never run more than their limits at once, while the
// ungrouped jobs fill the remaining slots.
TEST_F(ExecutorTest, RespectsTheGroupConcurrencyLimit) {
  std::mutex m;
  std::map<std::string, int> now, peak;
  registry_.add("grouped", [&](const json& data, JobContext&) {
    const std::string g = data["g"].get<std::string>();
    {
      std::lock_guard lock(m);
      peak[g] = std::max(peak[g], ++now[g]);
    }
    std::this_thread::sleep_for(milliseconds(40));
    std::lock_guard lock(m);
    --now[g];
    return json::object();
  });
  ExecutorOptions opt;
  opt.concurrency = 6;
  opt.poll_interval = milliseconds(50);
  opt.group_concurrency = {{"grouped", queue::GroupConcurrency{1, {{"pro", 2}}}}};
  start(opt);
  std::vector<queue::SendJob> jobs;
  for (int i = 0; i < 6; ++i) {
    jobs.push_back({json{{"g", "a"}}, {{"groupId", "a"}}});
    jobs.push_back({json{{"g", "b"}}, {{"groupId", "b"}, {"groupTier", "pro"}}});
    jobs.push_back({json{{"g", "-"}}, json::object()});
  }
  client_->send_many("grouped", jobs);
  ASSERT_TRUE(eventually([&] { return count("state = 'completed'") == 18; }));
  std::lock_guard lock(m);
  EXPECT_EQ(peak["a"], 1);
  EXPECT_EQ(peak["b"], 2);
  EXPECT_GE(peak["-"], 2);
}

// Workers are woken one at a time and pass the wake on; a worker woken for jobs that another
// had already taken once kept the wake flag set and no worker was woken again: claimed jobs then
// sat unrun. Bursts of short jobs with idle gaps between them are what exposed it.
TEST_F(ExecutorTest, BurstsOfShortJobsAfterIdleGapsAllRun) {
  std::atomic<int> ran{0};
  registry_.add("burst", [&](const json&, JobContext&) {
    ++ran;
    return json();
  });
  ExecutorOptions opt;
  opt.concurrency = 16;
  opt.max_batch = 50;
  opt.poll_interval = milliseconds(50);
  start(opt);
  for (int burst = 1; burst <= 6; ++burst) {
    std::vector<queue::SendJob> jobs;
    for (int i = 0; i < 150; ++i)
      jobs.push_back({json{{"burst", burst}, {"i", i}}, json::object()});
    client_->send_many("burst", jobs);
    ASSERT_TRUE(eventually([&] {
      return count("name = 'burst' AND state = 'completed'") == burst * 150;
    })) << "burst "
        << burst << ": " << count("name = 'burst' AND state = 'active'") << " jobs left active";
    std::this_thread::sleep_for(milliseconds(120));
  }
  EXPECT_EQ(ran.load(), 900);
}

TEST_F(ExecutorTest, ExceptionsRetryAndInputErrorsFailAtOnce) {
  std::atomic<int> calls{0};
  registry_.add("flaky", [&](const json&, JobContext&) -> json {
    ++calls;
    throw std::runtime_error("disk on fire");
  });
  registry_.add("strict",
                [](const json&, JobContext&) -> json { YW_THROW_INPUT("record_id: required"); });
  ExecutorOptions opt;
  opt.poll_interval = milliseconds(100);
  opt.queue_options = {{"flaky", {{"retryLimit", 1}}}, {"strict", {{"retryLimit", 3}}}};
  auto& ex = start(opt);
  const auto f = *client_->send("flaky", {json{{"a", 1}}, json::object()});
  const auto st = *client_->send("strict", {json{{"a", 1}}, json::object()});
  ASSERT_TRUE(eventually([&] { return state("flaky", f) == "failed"; }));
  ASSERT_TRUE(eventually([&] { return state("strict", st) == "failed"; }));
  EXPECT_EQ(calls.load(), 2);
  const json fj = client_->get_job("flaky", f);
  EXPECT_EQ(fj["output"]["name"], "Error");
  EXPECT_EQ(fj["output"]["message"], "disk on fire");
  EXPECT_TRUE(fj["output"]["stack"].is_string());
  EXPECT_EQ(fj["retry_count"], 1);
  const json sj = client_->get_job("strict", st);
  EXPECT_EQ(sj["output"]["name"], "InputError");
  EXPECT_EQ(sj["output"]["message"], "record_id: required");
  EXPECT_EQ(sj["retry_count"], 0) << "an input error is not retried";
  EXPECT_EQ(count("name = 'strict__dead' AND source_id = '" + st + "'"), 1);
  EXPECT_EQ(count("name = 'flaky__dead' AND source_id = '" + f + "'"), 1);
  EXPECT_EQ(ex.stats().dead, 1u);
}

TEST_F(ExecutorTest, AHandlerPastExpireSecondsIsStoppedAndFailed) {
  std::atomic<bool> saw_stop{false};
  registry_.add("stuck", [&](const json&, JobContext& ctx) -> json {
    while (!ctx.stop.stop_requested())
      std::this_thread::sleep_for(milliseconds(10));
    saw_stop = true;
    return json{{"late", true}};
  });
  ExecutorOptions opt;
  // The sweep would race the in-process expiry for the same overdue job; this test is about the
  // latter.
  opt.sweep_interval = milliseconds(0);
  opt.queue_options = {{"stuck", {{"retryLimit", 0}, {"expireInSeconds", 1}}}};
  auto& ex = start(opt);
  const auto id = *client_->send("stuck", {json{{"a", 1}}, json::object()});
  ASSERT_TRUE(eventually([&] { return state("stuck", id) == "failed"; }));
  EXPECT_TRUE(eventually([&] { return saw_stop.load(); }));
  const json j = client_->get_job("stuck", id);
  EXPECT_EQ(j["output"]["message"], "handler execution exceeded 1s");
  EXPECT_TRUE(eventually([&] { return ex.in_flight() == 0; }));
  EXPECT_EQ(ex.stats().expired, 1u);
}

TEST_F(ExecutorTest, HeartbeatsKeepALongJobAliveAgainstTheSweep) {
  registry_.add("long", [](const json&, JobContext&) {
    std::this_thread::sleep_for(milliseconds(3500));
    return json{{"done", true}};
  });
  ExecutorOptions opt;
  opt.sweep_interval = milliseconds(300);
  opt.queue_options = {{"long", {{"heartbeatSeconds", 2}}}};
  start(opt);
  const auto id = *client_->send("long", {json{{"a", 1}}, json::object()});
  ASSERT_TRUE(eventually([&] { return state("long", id) == "completed"; }));
  EXPECT_EQ(client_->get_job("long", id)["output"], json({{"done", true}}));
}

TEST_F(ExecutorTest, ASettleAfterTheClaimWasLostIsLoggedNotThrown) {
  std::atomic<bool> release{false};
  registry_.add("lost", [&](const json&, JobContext&) {
    while (!release)
      std::this_thread::sleep_for(milliseconds(10));
    return json{{"stale", true}};
  });
  ExecutorOptions opt;
  opt.sweep_interval = milliseconds(0);
  opt.queue_options = {{"lost", {{"retryLimit", 0}}}};
  auto& ex = start(opt);
  const auto id = *client_->send("lost", {json{{"a", 1}}, json::object()});
  ASSERT_TRUE(eventually([&] { return state("lost", id) == "active"; }));
  // Another worker's sweep expires the attempt while our handler still runs.
  schema_->exec("UPDATE " + schema_->name() +
                ".job SET started_on = now() - interval '1 hour' WHERE id = '" + id + "'");
  EXPECT_EQ(client_->expire_sweep({"lost"}), 1);
  release = true;
  ASSERT_TRUE(eventually([&] { return ex.stats().lost_claims == 1; }));
  const json j = client_->get_job("lost", id);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["output"], json({{"value", {{"message", "job timed out"}}}}));
  EXPECT_TRUE(eventually([&] { return ex.in_flight() == 0; }));
}

TEST_F(ExecutorTest, ChildJobsAreSentInTheTransactionThatCompletesTheParent) {
  registry_.add("parent", [](const json& data, JobContext& ctx) {
    ctx.children->push_back(
        {"child", json{{"from", data["n"]}}, {{"singletonKey", "c-" + data["n"].dump()}}});
    if (data["n"] == 2) ctx.children->push_back({"nowhere", json{}, json::object()});
    return json{{"ok", true}};
  });
  registry_.add("child", [](const json& data, JobContext&) { return data; });
  ExecutorOptions opt;
  opt.queue_options = {{"parent", {{"retryLimit", 0}}}};
  start(opt);
  const auto good = *client_->send("parent", {json{{"n", 1}}, json::object()});
  const auto bad = *client_->send("parent", {json{{"n", 2}}, json::object()});
  ASSERT_TRUE(eventually([&] { return state("parent", good) == "completed"; }));
  ASSERT_TRUE(eventually([&] { return state("parent", bad) == "failed"; }));
  ASSERT_TRUE(eventually([&] { return count("name = 'child' AND state = 'completed'") == 1; }));
  EXPECT_EQ(count("name = 'child' AND singleton_key = 'c-1'"), 1);
  EXPECT_EQ(count("name = 'child' AND singleton_key = 'c-2'"), 0)
      << "a parent whose children cannot all be sent sends none";
}

// A transactional queue (process_new_record's mode): handlers run on the fetch loops and each
// batch's completions, children and failures commit with its claim; batches of 10 over 40 slots
// run on 4 loops at once.
TEST_F(ExecutorTest, TransactionalQueuesSettleEachBatchWithItsClaim) {
  std::atomic<int> calls{0};
  registry_.add("rec", [&](const json& data, JobContext& ctx) {
    ++calls;
    const int n = data["n"].get<int>();
    if (n == 3) throw InputError("n = 3 is not a record");
    if (n == 4) throw std::runtime_error("n = 4 failed");
    ctx.children->push_back({"kid", json{{"from", n}}, json::object()});
    return json{{"n", n}};
  });
  registry_.add("kid", [](const json& data, JobContext&) { return data; });
  client_->create_queue("rec__dead");
  client_->create_queue("rec", {{"retryLimit", 0}, {"deadLetter", "rec__dead"}});
  std::vector<queue::SendJob> jobs;
  for (int i = 0; i < 30; ++i)
    jobs.push_back({json{{"n", i}}, json::object()});
  client_->send_many("rec", jobs);
  ExecutorOptions opt;
  opt.transactional_queues = {"rec"};
  opt.queue_concurrency = {{"rec", 40}};
  opt.queue_max_batch = {{"rec", 10}};
  EXPECT_EQ(opt.fetch_loops("rec"), 4);
  EXPECT_EQ(opt.fetch_loops("kid"), 1);
  auto& ex = start(opt);
  ASSERT_TRUE(eventually([&] { return count("name = 'kid' AND state = 'completed'") == 28; }));
  EXPECT_EQ(count("name = 'rec' AND state = 'completed' AND started_on <= completed_on"), 28);
  EXPECT_EQ(count("name = 'rec' AND state = 'failed'"), 2);
  EXPECT_EQ(count("name = 'rec__dead'"), 2);
  EXPECT_EQ(calls.load(), 30) << "each job ran once";
  const auto st = ex.stats();
  EXPECT_EQ(st.completed, 56u);
  EXPECT_EQ(st.dead, 1u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(ex.in_flight(), 0);
}

// A batch that cannot be written (a child for a queue that does not exist) is rolled back as a
// whole; the queue then claims and settles job by job for a while, where only that job fails.
TEST_F(ExecutorTest, ATransactionalBatchThatCannotBeWrittenFallsBackToOneByOne) {
  registry_.add("rec", [](const json& data, JobContext& ctx) {
    ctx.children->push_back({data["n"] == 2 ? "nowhere" : "kid", json::object(), json::object()});
    return json::object();
  });
  registry_.add("kid", [](const json&, JobContext&) { return json::object(); });
  client_->create_queue("rec", {{"retryLimit", 0}});
  std::vector<queue::SendJob> jobs;
  for (int i = 0; i < 5; ++i)
    jobs.push_back({json{{"n", i}}, json::object()});
  client_->send_many("rec", jobs);
  ExecutorOptions opt;
  opt.transactional_queues = {"rec"};
  opt.queue_options = {{"rec", {{"retryLimit", 0}}}};
  start(opt);
  ASSERT_TRUE(eventually([&] { return count("name = 'rec' AND state >= 'completed'") == 5; }));
  EXPECT_EQ(count("name = 'rec' AND state = 'completed'"), 4);
  EXPECT_EQ(count("name = 'rec' AND state = 'failed' AND output->>'message' LIKE '%nowhere%'"), 1);
  ASSERT_TRUE(eventually([&] { return count("name = 'kid' AND state = 'completed'") == 4; }));
}

TEST_F(ExecutorTest, ChildrenForAServedQueueStartWithoutWaitingForThePoll) {
  registry_.add("stage1", [](const json&, JobContext& ctx) {
    ctx.children->push_back({"stage2", json{{"n", 1}}, json::object()});
    return json::object();
  });
  std::atomic<bool> child_ran{false};
  registry_.add("stage2", [&](const json&, JobContext&) {
    child_ran = true;
    return json::object();
  });
  ExecutorOptions opt;
  opt.poll_interval = milliseconds(20'000);
  // The parent arrives by NOTIFY; the child's queue has none, so only the in-process wake helps.
  opt.queue_options = {{"stage2", {{"notify", false}}}};
  start(opt);
  std::this_thread::sleep_for(milliseconds(500));  // LISTEN established, both loops polled once
  client_->send("stage1", {json{{"n", 1}}, json::object()});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return child_ran.load(); }, milliseconds(5'000)))
      << "the child waited for the poll interval";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5'000));
}

TEST_F(ExecutorTest, NotifyWakesTheFetchLoopBeforeThePollInterval) {
  registry_.add("fast", [](const json&, JobContext&) { return json::object(); });
  ExecutorOptions opt;
  opt.poll_interval = milliseconds(60'000);
  start(opt);  // the queue is created with notify=true by default
  EXPECT_TRUE(client_->queue("fast").notify);
  std::this_thread::sleep_for(milliseconds(500));  // LISTEN established, first poll done
  const auto t0 = std::chrono::steady_clock::now();
  const auto id = *client_->send("fast", {json{{"a", 1}}, json::object()});
  ASSERT_TRUE(eventually([&] { return state("fast", id) == "completed"; }, milliseconds(5000)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
}

TEST_F(ExecutorTest, ShutdownFailsBackRunningJobsAsRetryable) {
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  registry_.add("busy", [&](const json&, JobContext& ctx) -> json {
    started = true;
    while (!ctx.stop.stop_requested())
      std::this_thread::sleep_for(milliseconds(10));
    stopped = true;
    throw std::runtime_error("interrupted");
  });
  ExecutorOptions opt;
  auto& ex = start(opt);
  const auto id = *client_->send("busy", {json{{"a", 1}}, json::object()});
  // in_flight() and `active` hold from the claim on, while the job may still wait in the
  // executor's queue for a handler thread: failed back from there, its handler never runs (the
  // flake seen under load). Wait for the handler itself.
  ASSERT_TRUE(eventually([&] { return started.load() && state("busy", id) == "active"; }));
  ex.stop_fetching();
  EXPECT_EQ(ex.fail_back_running(), 1);
  EXPECT_TRUE(ex.join(milliseconds(5000)));
  EXPECT_TRUE(stopped.load());
  const json j = client_->get_job("busy", id);
  EXPECT_EQ(j["state"], "retry");
  EXPECT_EQ(j["output"]["message"], "yesod-worker shut down while active");
}

TEST_F(ExecutorTest, AQueueWithoutAHandlerIsAConfigurationError) {
  ExecutorOptions opt;
  opt.queues = {"unknown"};
  Executor ex(*client_, registry_, opt);
  EXPECT_THROW(ex.start(), ConfigError);
}

}  // namespace
}  // namespace yw::worker
