// The pg-boss client against a real PostgreSQL whose schema the pinned pg-boss CLI installed
// (label db). Each test gets its own schema.
#include <pqxx/pqxx>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <ostream>
#include <set>
#include <thread>

#include "pgboss/sql.hpp"
#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/listener.hpp"

namespace yw::queue {
namespace {

using nlohmann::json;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    YW_REQUIRE_DATABASE();
    schema_ = std::make_unique<test::PgBossSchema>();
    pool_ = std::make_unique<ConnectionPool>(PoolConfig{.url = schema_->url(), .max_size = 4});
    client_ = std::make_unique<PgBossClient>(*pool_, schema_->name());
  }

  // One row of SQL, every column as text; `{s}` is replaced by the schema.
  pqxx::row row(const std::string& sql) {
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    return tx.exec1(fmt::format(fmt::runtime(sql), fmt::arg("s", schema_->name())));
  }
  void exec(const std::string& sql) {
    schema_->exec(fmt::format(fmt::runtime(sql), fmt::arg("s", schema_->name())));
  }
  json job(const std::string& q, const std::string& id) { return client_->get_job(q, id); }

  std::unique_ptr<test::PgBossSchema> schema_;
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<PgBossClient> client_;
};

TEST_F(ClientTest, CreateQueueIsIdempotentAndKeepsTheFirstOptions) {
  client_->create_queue("q", {{"retryLimit", 5}});
  client_->create_queue("q", {{"retryLimit", 9}});
  const QueueInfo info = client_->queue("q");
  EXPECT_EQ(info.policy, "standard");
  EXPECT_EQ(info.retry_limit, 5);
  EXPECT_EQ(info.table_name, "job_common");
  EXPECT_THROW(client_->create_queue("bad name"), ConfigError);
  EXPECT_THROW(client_->create_queue("q2", {{"policy", "lifo"}}), ConfigError);
  EXPECT_THROW(client_->queue("missing"), Error);
}

TEST_F(ClientTest, SendTakesOptionsThenTheQueueRowThenDefaults) {
  client_->create_queue("dlq");
  client_->create_queue("q", {{"retryLimit", 4},
                              {"retryDelay", 3},
                              {"expireInSeconds", 60},
                              {"retentionSeconds", 100},
                              {"deadLetter", "dlq"},
                              {"heartbeatSeconds", 30}});
  const auto a = client_->send("q", {json{{"x", 1}}, json::object()});
  ASSERT_TRUE(a);
  json j = job("q", *a);
  EXPECT_EQ(j["data"], json({{"x", 1}}));
  EXPECT_EQ(j["retry_limit"], 4);
  EXPECT_EQ(j["retry_delay"], 3);
  EXPECT_EQ(j["expire_seconds"], 60);
  EXPECT_EQ(j["dead_letter"], "dlq");
  EXPECT_EQ(j["heartbeat_seconds"], 30);
  EXPECT_EQ(j["policy"], "standard");
  EXPECT_EQ(j["deletion_seconds"], 604800);
  EXPECT_EQ(j["priority"], 0);
  EXPECT_EQ(j["state"], "created");
  EXPECT_EQ(row("SELECT round(extract(epoch FROM keep_until - start_after))::int FROM "
                "{s}.job WHERE id = '" +
                *a + "'")[0]
                .as<int>(),
            100);
  const auto b = client_->send("q", {nullptr,
                                     {{"retryLimit", 1},
                                      {"priority", 7},
                                      {"startAfter", 120},
                                      {"singletonKey", "k"},
                                      {"expireInSeconds", 5}}});
  ASSERT_TRUE(b);
  j = job("q", *b);
  EXPECT_TRUE(j["data"].is_null());
  EXPECT_EQ(j["retry_limit"], 1);
  EXPECT_EQ(j["priority"], 7);
  EXPECT_EQ(j["singleton_key"], "k");
  EXPECT_EQ(j["expire_seconds"], 5);
  const int delay = row("SELECT round(extract(epoch FROM start_after - created_on))::int FROM "
                        "{s}.job WHERE id = '" +
                        *b + "'")[0]
                        .as<int>();
  EXPECT_EQ(delay, 120);
  const auto c = client_->send("q", {json{1}, {{"startAfter", "2030-01-02T03:04:05Z"}}});
  ASSERT_TRUE(c);
  EXPECT_EQ(row("SELECT to_char(start_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM "
                "{s}.job WHERE id = '" +
                *c + "'")[0]
                .as<std::string>(),
            "2030-01-02 03:04:05");
  EXPECT_THROW(client_->send("q", {json{}, {{"nope", 1}}}), InputError);
  EXPECT_THROW(client_->send("q", {json{}, {{"priority", "high"}}}), InputError);
}

TEST_F(ClientTest, FetchOrdersByPriorityThenAgeAndSkipsDelayedJobs) {
  client_->create_queue("q");
  const auto low = client_->send("q", {json{{"n", "low"}}, json::object()});
  const auto high = client_->send("q", {json{{"n", "high"}}, {{"priority", 5}}});
  const auto later = client_->send("q", {json{{"n", "later"}}, {{"startAfter", 3600}}});
  auto jobs = client_->fetch("q", 10);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, *high);
  EXPECT_EQ(jobs[1].id, *low);
  EXPECT_EQ(jobs[0].retry_count, 0);
  EXPECT_EQ(jobs[0].data["n"], "high");
  EXPECT_EQ(job("q", *high)["state"], "active");
  EXPECT_TRUE(client_->fetch("q", 10).empty());
  (void)later;
}

TEST_F(ClientTest, ConcurrentFetchesNeverShareAJob) {
  client_->create_queue("q");
  std::vector<SendJob> batch(400, SendJob{json{{"v", 1}}, json::object()});
  ASSERT_EQ(client_->send_many("q", batch).size(), 400u);
  std::mutex m;
  std::multiset<std::string> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (true) {
        auto jobs = client_->fetch("q", 7);
        if (jobs.empty()) break;
        std::lock_guard lock(m);
        for (auto& j : jobs)
          seen.insert(j.id);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(seen.size(), 400u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 400u);
}

TEST_F(ClientTest, CompleteStoresEachOutputAndIsFencedOnTheAttempt) {
  client_->create_queue("q");
  client_->send_many("q", {{json{1}, json::object()}, {json{2}, json::object()}});
  auto jobs = client_->fetch("q", 2);
  ASSERT_EQ(jobs.size(), 2u);
  const auto done = client_->complete(
      "q", {{jobs[0].id, 0, stored_output(json{{"a", 1}})}, {jobs[1].id, 0, stored_output(42)}});
  EXPECT_EQ(done.size(), 2u);
  EXPECT_EQ(job("q", jobs[0].id)["output"], json({{"a", 1}}));
  EXPECT_EQ(job("q", jobs[1].id)["output"], json({{"value", 42}}));
  EXPECT_EQ(job("q", jobs[1].id)["state"], "completed");
  // A second settle of the same attempt changes nothing: the claim is gone.
  EXPECT_TRUE(client_->complete("q", {{jobs[0].id, 0, json{{"b", 2}}}}).empty());
  EXPECT_EQ(job("q", jobs[0].id)["output"], json({{"a", 1}}));
  // A null output is stored as SQL NULL.
  client_->send("q", {json{3}, json::object()});
  auto third = client_->fetch("q", 1);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(client_->complete("q", {{third[0].id, 0, stored_output(nullptr)}}).size(), 1u);
  EXPECT_EQ(
      row("SELECT output IS NULL FROM {s}.job WHERE id = '" + third[0].id + "'")[0].as<bool>(),
      true);
}

TEST_F(ClientTest, CompleteAndFetchWritesBothInOneStatement) {
  client_->create_queue("q");
  client_->send_many("q", {{json{1}, json::object()}, {json{2}, json::object()}});
  auto first = client_->fetch("q", 1);
  ASSERT_EQ(first.size(), 1u);
  std::vector<std::string> done;
  // A stale attempt is fenced out here too.
  EXPECT_TRUE(
      client_->complete_and_fetch("q", {{first[0].id, 5, json{{"stale", 1}}}}, 0, done).empty());
  EXPECT_TRUE(done.empty());
  auto second = client_->complete_and_fetch("q", {{first[0].id, 0, json{{"r", 1}}}}, 5, done);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].id, first[0].id);
  EXPECT_EQ(second[0].data, json{2});
  EXPECT_EQ(done, std::vector<std::string>{first[0].id});
  EXPECT_EQ(job("q", first[0].id)["output"], json({{"r", 1}}));
  EXPECT_EQ(job("q", second[0].id)["state"], "active");
  // Nothing left to claim: the completion is still written.
  auto none = client_->complete_and_fetch("q", {{second[0].id, 0, nullptr}}, 5, done);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(done, std::vector<std::string>{second[0].id});
  EXPECT_EQ(job("q", second[0].id)["state"], "completed");
}

// claim_and_run: the claim, the handlers' outcomes and their children commit together. While
// `run` runs, the rows are locked but still queued: other sessions neither see them active nor
// can claim them. Afterwards every row reads as if fetch and then complete/fail had run.
TEST_F(ClientTest, ClaimAndRunClaimsRunsAndSettlesInOneTransaction) {
  client_->create_queue("q__dead");
  client_->create_queue("q", {{"retryLimit", 1}, {"deadLetter", "q__dead"}});
  client_->create_queue("kids");
  EXPECT_TRUE(client_->claims_in_transaction("q"));
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(*client_->send("q", {json{{"n", i}}, {{"priority", i == 2 ? 5 : 0}}}));
  // Job 4 is a retry: its claim counts the earlier attempt.
  exec("UPDATE {s}.job SET state = 'retry', started_on = now() - interval '1 minute' WHERE id = '" +
       ids[4] + "'");
  using Kind = PgBossClient::RunOutcome::Kind;
  const PgBossClient::RunResult r =
      client_->claim_and_run("q", 10, [&](const std::vector<Job>& jobs) {
        EXPECT_EQ(jobs.size(), 5u);
        EXPECT_EQ(jobs.at(0).id, ids[2]) << "priority first";
        EXPECT_EQ(
            row("SELECT count(*) FROM {s}.job WHERE name = 'q' AND state < 'active'")[0].as<int>(),
            5);
        ConnectionPool other_pool(PoolConfig{.url = schema_->url(), .max_size = 1});
        PgBossClient other(other_pool, schema_->name());
        EXPECT_TRUE(other.fetch("q", 10).empty()) << "locked rows are skipped by other claims";
        std::vector<PgBossClient::RunOutcome> out;
        for (const Job& j : jobs) {
          PgBossClient::RunOutcome o;
          o.settle = {j.id, j.retry_count, json{{"n", j.data["n"]}, {"try", j.retry_count}}};
          const int n = j.data["n"].get<int>();
          if (n == 0) o.children = {{"kids", SendJob{json{{"from", 0}}, json::object()}}};
          if (n == 1) o.kind = Kind::fail;
          if (n == 3) o.kind = Kind::fail_terminal;
          out.push_back(std::move(o));
        }
        return out;
      });
  EXPECT_EQ(r.claimed, 5u);
  EXPECT_EQ(std::set<std::string>(r.completed.begin(), r.completed.end()),
            std::set<std::string>({ids[0], ids[2], ids[4]}));
  EXPECT_EQ(r.failed, std::vector<std::string>{ids[1]});
  EXPECT_EQ(r.dead, std::vector<std::string>{ids[3]});
  for (const int i : {0, 2, 4}) {
    const json j = job("q", ids[i]);
    EXPECT_EQ(j["state"], "completed");
    EXPECT_EQ(j["retry_count"], i == 4 ? 1 : 0);
    EXPECT_EQ(j["output"], json({{"n", i}, {"try", i == 4 ? 1 : 0}}));
    EXPECT_FALSE(j["heartbeat_on"].is_null());
    EXPECT_TRUE(row("SELECT started_on > now() - interval '1 minute' AND started_on <= "
                    "completed_on FROM {s}.job WHERE id = '" +
                    ids[i] + "'")[0]
                    .as<bool>());
  }
  EXPECT_EQ(job("q", ids[1])["state"], "retry");
  EXPECT_EQ(job("q", ids[1])["retry_count"], 0);
  EXPECT_EQ(job("q", ids[3])["state"], "failed");
  EXPECT_EQ(
      row("SELECT count(*) FROM {s}.job WHERE name = 'q__dead' AND source_id = '" + ids[3] + "'")[0]
          .as<int>(),
      1);
  EXPECT_EQ(row("SELECT count(*) FROM {s}.job WHERE name = 'kids'")[0].as<int>(), 1);
  // The retried job's next claim counts this attempt.
  exec("UPDATE {s}.job SET start_after = now() WHERE id = '" + ids[1] + "'");
  const auto again = client_->claim_and_run("q", 10, [](const std::vector<Job>& jobs) {
    EXPECT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs.at(0).retry_count, 1);
    return std::vector<PgBossClient::RunOutcome>{
        {Kind::complete, {jobs[0].id, 1, nullptr}, {}, {}}};
  });
  EXPECT_EQ(again.completed.size(), 1u);
  EXPECT_TRUE(job("q", ids[1])["output"].is_null());
  // Nothing queued: an empty claim writes nothing.
  EXPECT_EQ(client_
                ->claim_and_run("q", 10,
                                [](const auto&) {
                                  ADD_FAILURE() << "run called without jobs";
                                  return std::vector<PgBossClient::RunOutcome>{};
                                })
                .claimed,
            0u);
}

// A transaction that does not commit leaves no trace: the jobs are queued as before (same
// attempt number, never started) and no child exists, whether `run` threw, a child could not be
// sent, or the connection died under it. Policies with rules on active jobs are refused.
TEST_F(ClientTest, ClaimAndRunLeavesEverythingQueuedWhenItsTransactionFails) {
  client_->create_queue("q");
  client_->create_queue("kids");
  for (int i = 0; i < 3; ++i)
    client_->send("q", {json{{"n", i}}, json::object()});
  const auto untouched = [&] {
    return row("SELECT count(*) FILTER (WHERE state = 'created' AND started_on IS NULL AND "
               "retry_count = 0) FROM {s}.job WHERE name = 'q'")[0]
                   .as<int>() == 3 &&
           row("SELECT count(*) FROM {s}.job WHERE name = 'kids'")[0].as<int>() == 0;
  };
  using Outcomes = std::vector<PgBossClient::RunOutcome>;
  const auto complete_all = [](const std::vector<Job>& jobs, const std::string& child_queue) {
    Outcomes out;
    for (const Job& j : jobs)
      out.push_back({PgBossClient::RunOutcome::Kind::complete,
                     {j.id, j.retry_count, json::object()},
                     {{child_queue, SendJob{json{{"n", j.data["n"]}}, json::object()}}},
                     {}});
    return out;
  };
  EXPECT_THROW(client_->claim_and_run("q", 10,
                                      [](const auto&) -> Outcomes {
                                        throw std::runtime_error("handler machinery broke");
                                      }),
               std::runtime_error);
  EXPECT_TRUE(untouched());
  EXPECT_THROW(client_->claim_and_run(
                   "q", 10, [&](const auto& jobs) { return complete_all(jobs, "nowhere"); }),
               Error);
  EXPECT_TRUE(untouched());
  // The connection dies while `run` runs (its transaction's last statement named it).
  try {
    client_->claim_and_run("q", 10, [&](const auto& jobs) {
      EXPECT_EQ(row("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                    "datname = current_database() AND state = 'idle in transaction' AND query "
                    "LIKE '%txid_current%'")[0]
                    .as<int>(),
                1);
      return complete_all(jobs, "kids");
    });
    ADD_FAILURE() << "claim_and_run returned on a dead connection";
  } catch (const std::exception& e) {
    EXPECT_TRUE(is_connection_error(e)) << e.what();
  }
  EXPECT_TRUE(untouched());
  const auto r =
      client_->claim_and_run("q", 10, [&](const auto& jobs) { return complete_all(jobs, "kids"); });
  EXPECT_EQ(r.completed.size(), 3u);
  EXPECT_EQ(row("SELECT count(*) FROM {s}.job WHERE name = 'kids'")[0].as<int>(), 3);

  client_->create_queue("one", {{"policy", "singleton"}});
  EXPECT_FALSE(client_->claims_in_transaction("one"));
  EXPECT_THROW(client_->claim_and_run("one", 1, [](const auto&) { return Outcomes{}; }), Error);
}

// pg-boss groupConcurrency (§4.4): groups a (no tier) and c (tier "free", not listed) take the
// default limit 1, group b (tier "pro") takes 2; jobs without a group are never limited.
TEST_F(ClientTest, GroupConcurrencyLimitsActiveJobsPerGroupAcrossClients) {
  client_->create_queue("q");
  std::vector<SendJob> jobs;
  for (int i = 0; i < 3; ++i)
    jobs.push_back({json{{"g", "a"}}, {{"groupId", "a"}}});
  for (int i = 0; i < 4; ++i)
    jobs.push_back({json{{"g", "b"}}, {{"groupId", "b"}, {"groupTier", "pro"}}});
  for (int i = 0; i < 2; ++i)
    jobs.push_back({json{{"g", "c"}}, {{"groupId", "c"}, {"groupTier", "free"}}});
  ASSERT_EQ(client_->send_many("q", jobs).size(), 9u);
  // A later statement, so a later created_on: the ungrouped jobs come after the grouped ones.
  ASSERT_EQ(client_->send_many("q", std::vector<SendJob>(3, {json{{"g", nullptr}}, json::object()}))
                .size(),
            3u);
  const GroupConcurrency limits{1, {{"pro", 2}}};
  ConnectionPool pool2(PoolConfig{.url = schema_->url(), .max_size = 2});
  PgBossClient other(pool2, schema_->name());
  const auto groups_of = [](const std::vector<Job>& js) {
    std::map<std::string, int> n;
    for (const auto& j : js)
      ++n[j.group_id.value_or("-")];
    return n;
  };
  const auto active = [&] {
    std::map<std::string, int> n;
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    for (const auto& r : tx.exec(fmt::format("SELECT COALESCE(group_id, '-'), count(*)::int FROM "
                                             "{}.job WHERE state = 'active' GROUP BY 1",
                                             schema_->name())))
      n[r[0].as<std::string>()] = r[1].as<int>();
    return n;
  };
  using Counts = std::map<std::string, int>;
  // One batch of 10 ranks each group's candidates: one of a, two of b, one of c. As in pg-boss,
  // the batch's 10 candidates (oldest first: 9 grouped, 1 not) are taken before the ranking, so
  // the excess of each group only shortens the batch.
  auto first = client_->fetch("q", 10, limits);
  EXPECT_EQ(groups_of(first), (Counts{{"a", 1}, {"b", 2}, {"c", 1}, {"-", 1}}));
  // While those are active, no client gets more of a, b or c, in batches or one at a time.
  EXPECT_EQ(groups_of(other.fetch("q", 10, limits)), (Counts{{"-", 2}}));
  EXPECT_TRUE(client_->fetch("q", 1, limits).empty());
  EXPECT_TRUE(other.fetch("q", 10, limits).empty());
  // Jobs without a group are never limited.
  client_->send_many("q", {{json{1}, json::object()}, {json{2}, json::object()}});
  EXPECT_EQ(groups_of(other.fetch("q", 10, limits)), (Counts{{"-", 2}}));
  EXPECT_EQ(active(), (Counts{{"a", 1}, {"b", 2}, {"c", 1}, {"-", 5}}));
  const auto find = [&](const std::string& g) {
    for (const auto& j : first)
      if (j.group_id == g) return j;
    throw std::runtime_error("no job of group " + g);
  };
  // Completing frees the slot. complete_and_fetch's claim reads the snapshot its own
  // completion is not yet visible in, so the slot is free from the next statement on.
  const Job a1 = find("a");
  std::vector<std::string> done;
  EXPECT_TRUE(other.complete_and_fetch("q", {{a1.id, 0, nullptr}}, 10, done, limits).empty());
  EXPECT_EQ(done, std::vector<std::string>{a1.id});
  auto a2 = other.fetch("q", 10, limits);
  EXPECT_EQ(groups_of(a2), (Counts{{"a", 1}}));
  const Job b1 = find("b");
  EXPECT_EQ(client_->complete("q", {{b1.id, 0, nullptr}}).size(), 1u);
  EXPECT_EQ(groups_of(client_->fetch("q", 10, limits)), (Counts{{"b", 1}}));
  EXPECT_EQ(active(), (Counts{{"a", 1}, {"b", 2}, {"c", 1}, {"-", 5}}));
  // A larger tier limit lets more in; the default still holds for c.
  EXPECT_EQ(groups_of(other.fetch("q", 10, GroupConcurrency{1, {{"pro", 3}}})), (Counts{{"b", 1}}));
  // Without the option nothing is limited.
  EXPECT_EQ(groups_of(client_->fetch("q", 10)), (Counts{{"a", 1}, {"c", 1}}));
  // Bad limits are refused before anything is sent.
  EXPECT_THROW(client_->fetch("q", 1, GroupConcurrency{0, {}}), InputError);
  EXPECT_THROW(client_->fetch("q", 1, GroupConcurrency{1, {{"pro", 0}}}), InputError);
  EXPECT_THROW(client_->fetch("q", 1, GroupConcurrency{1, {{"", 2}}}), InputError);
}

// The batch ranking applies on top of the singleton ranking, as in pg-boss.
TEST_F(ClientTest, GroupConcurrencyCombinesWithSingletonBatches) {
  client_->create_queue("s", {{"policy", "singleton"}});
  std::vector<SendJob> jobs;
  for (int i = 0; i < 3; ++i)
    jobs.push_back({json{i}, {{"groupId", "g"}, {"singletonKey", "k" + std::to_string(i)}}});
  ASSERT_EQ(client_->send_many("s", jobs).size(), 3u);
  EXPECT_EQ(client_->fetch("s", 10, GroupConcurrency{2, {}}).size(), 2u);
  EXPECT_TRUE(client_->fetch("s", 10, GroupConcurrency{2, {}}).empty());
}

TEST_F(ClientTest, AStaleAttemptCannotSettleTheNextOne) {
  client_->create_queue("q", {{"retryLimit", 3}});
  const auto id = *client_->send("q", {json{1}, json::object()});
  auto first = client_->fetch("q", 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(client_->fail("q", {{id, 0, error_output("Error", "boom", "s")}}, false).size(), 1u);
  auto second = client_->fetch("q", 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].retry_count, 1);
  // The first attempt's late settles and touches land nowhere.
  EXPECT_TRUE(client_->complete("q", {{id, 0, json{{"late", true}}}}).empty());
  EXPECT_TRUE(client_->fail("q", {{id, 0, json{{"late", true}}}}, false).empty());
  EXPECT_TRUE(client_->touch("q", {{id, 0}}).empty());
  EXPECT_EQ(client_->touch("q", {{id, 1}}).size(), 1u);
  EXPECT_EQ(job("q", id)["state"], "active");
}

TEST_F(ClientTest, FailRetriesWithBackoffThenFailsIntoTheDeadLetterQueue) {
  client_->create_queue("q__dead");
  client_->create_queue(
      "q",
      {{"retryLimit", 1}, {"retryDelay", 2}, {"retryBackoff", true}, {"deadLetter", "q__dead"}});
  const auto id = *client_->send("q", {json{{"k", "v"}}, {{"priority", 3}}});
  auto a = client_->fetch("q", 1);
  ASSERT_EQ(a.size(), 1u);
  const json err = error_output("Error", "first", "Error: first");
  EXPECT_EQ(client_->fail("q", {{id, 0, err}}, false).size(), 1u);
  json j = job("q", id);
  EXPECT_EQ(j["state"], "retry");
  EXPECT_EQ(j["output"], err);
  EXPECT_TRUE(j["completed_on"].is_null());
  // Backoff after the first failure: uniform in [d, 2d) with d = 2 s.
  const double delay =
      row("SELECT extract(epoch FROM start_after - {s}.job_now()) FROM {s}.job WHERE id = '" + id +
          "'")[0]
          .as<double>();
  EXPECT_GT(delay, 1.5);
  EXPECT_LT(delay, 4.1);
  exec("UPDATE {s}.job SET start_after = now() WHERE id = '" + id + "'");
  auto b = client_->fetch("q", 1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].retry_count, 1);
  const json err2 = error_output("Error", "second", "Error: second");
  EXPECT_EQ(client_->fail("q", {{id, 1, err2}}, false).size(), 1u);
  j = job("q", id);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_FALSE(j["completed_on"].is_null());
  const auto dl =
      row("SELECT data::text, priority, source_name, source_id::text, source_retry_count, "
          "source_output::text, source_root_id::text, output IS NULL, policy IS NULL, state::text "
          "FROM {s}.job WHERE name = 'q__dead'");
  EXPECT_EQ(json::parse(dl[0].c_str()), json({{"k", "v"}}));
  EXPECT_EQ(dl[1].as<int>(), 3);
  EXPECT_EQ(dl[2].as<std::string>(), "q");
  EXPECT_EQ(dl[3].as<std::string>(), id);
  EXPECT_EQ(dl[4].as<int>(), 1);
  EXPECT_EQ(json::parse(dl[5].c_str()), err2);
  EXPECT_EQ(dl[6].as<std::string>(), id);
  EXPECT_TRUE(dl[7].as<bool>());
  EXPECT_TRUE(dl[8].as<bool>());
  EXPECT_EQ(dl[9].as<std::string>(), "created");
}

TEST_F(ClientTest, TerminalFailSkipsTheRemainingRetries) {
  client_->create_queue("q__dead");
  client_->create_queue("q", {{"retryLimit", 5}, {"deadLetter", "q__dead"}});
  const auto id = *client_->send("q", {json{{"bad", true}}, json::object()});
  ASSERT_EQ(client_->fetch("q", 1).size(), 1u);
  const json err = error_output("InputError", "record_id: required", "InputError: …");
  EXPECT_EQ(client_->fail("q", {{id, 0, err}}, true).size(), 1u);
  EXPECT_EQ(job("q", id)["state"], "failed");
  EXPECT_EQ(job("q", id)["output"], err);
  EXPECT_EQ(row("SELECT count(*) FROM {s}.job WHERE name = 'q__dead'")[0].as<int>(), 1);
}

TEST_F(ClientTest, SingletonAndStatelyRunOneJobPerKeyAtATime) {
  for (const char* policy : {"singleton", "stately"}) {
    const std::string q = std::string("q_") + policy;
    client_->create_queue(q, {{"policy", policy}});
    client_->send(q, {json{1}, {{"singletonKey", "a"}}});
    const auto second = client_->send(q, {json{2}, {{"singletonKey", "a"}}});
    client_->send(q, {json{3}, {{"singletonKey", "b"}}});
    if (std::string(policy) == "stately") {
      EXPECT_FALSE(second) << "stately keeps one created job per key";
    }
    auto jobs = client_->fetch(q, 10);
    ASSERT_EQ(jobs.size(), 2u) << policy;  // one per key
    EXPECT_TRUE(client_->fetch(q, 10).empty()) << policy;
  }
}

TEST_F(ClientTest, ShortAndExclusiveRefuseASecondQueuedJobPerKey) {
  client_->create_queue("s", {{"policy", "short"}});
  EXPECT_TRUE(client_->send("s", {json{1}, {{"singletonKey", "k"}}}));
  EXPECT_FALSE(client_->send("s", {json{2}, {{"singletonKey", "k"}}}));
  client_->create_queue("e", {{"policy", "exclusive"}});
  EXPECT_TRUE(client_->send("e", {json{1}, {{"singletonKey", "k"}}}));
  ASSERT_EQ(client_->fetch("e", 1).size(), 1u);
  EXPECT_FALSE(client_->send("e", {json{2}, {{"singletonKey", "k"}}}))
      << "exclusive: one queued-or-active job per key";
}

TEST_F(ClientTest, KeyStrictFifoRunsEachKeyInOrderAndAFailureBlocksIt) {
  client_->create_queue("f", {{"policy", "key_strict_fifo"}, {"retryLimit", 0}});
  const auto a1 = *client_->send("f", {json{"a1"}, {{"singletonKey", "a"}}});
  client_->send("f", {json{"a2"}, {{"singletonKey", "a"}}});
  const auto b1 = *client_->send("f", {json{"b1"}, {{"singletonKey", "b"}}});
  auto jobs = client_->fetch("f", 10);
  ASSERT_EQ(jobs.size(), 2u);
  std::set<std::string> ids{jobs[0].id, jobs[1].id};
  EXPECT_EQ(ids, (std::set<std::string>{a1, b1}));
  EXPECT_TRUE(client_->fetch("f", 10).empty());
  client_->fail("f", {{a1, 0, json{{"x", 1}}}}, false);
  EXPECT_EQ(job("f", a1)["state"], "failed");
  EXPECT_TRUE(client_->fetch("f", 10).empty()) << "a failed job blocks its key";
}

TEST_F(ClientTest, ExpirySweepFailsOverdueAndHeartbeatLostJobs) {
  client_->create_queue("q", {{"retryLimit", 1}});
  const auto slow = *client_->send("q", {json{1}, {{"expireInSeconds", 1}}});
  const auto silent = *client_->send("q", {json{2}, {{"heartbeatSeconds", 10}}});
  const auto fine = *client_->send("q", {json{3}, json::object()});
  ASSERT_EQ(client_->fetch("q", 3).size(), 3u);
  exec("UPDATE {s}.job SET started_on = now() - interval '5 s' WHERE id = '" + slow + "'");
  exec("UPDATE {s}.job SET heartbeat_on = now() - interval '11 s' WHERE id = '" + silent + "'");
  EXPECT_EQ(client_->expire_sweep({"q"}), 2);
  EXPECT_EQ(job("q", slow)["state"], "retry");
  EXPECT_EQ(job("q", slow)["output"], json({{"value", {{"message", "job timed out"}}}}));
  EXPECT_EQ(job("q", silent)["output"], json({{"value", {{"message", "job heartbeat timeout"}}}}));
  EXPECT_EQ(job("q", fine)["state"], "active");
  EXPECT_EQ(client_->expire_sweep({"q"}), 0);
}

TEST_F(ClientTest, DeletionSweepRemovesOldFinishedJobsUnderTheMaintainClaim) {
  client_->create_queue("q", {{"deleteAfterSeconds", 1}});
  const auto old_id = *client_->send("q", {json{1}, json::object()});
  const auto new_id = *client_->send("q", {json{2}, json::object()});
  ASSERT_EQ(client_->fetch("q", 2).size(), 2u);
  client_->complete("q", {{old_id, 0, nullptr}, {new_id, 0, nullptr}});
  exec("UPDATE {s}.job SET completed_on = now() - interval '1 minute' WHERE id = '" + old_id + "'");
  EXPECT_EQ(client_->deletion_sweep({"q"}, std::chrono::seconds(3600)), 1);
  EXPECT_TRUE(job("q", old_id).is_null());
  EXPECT_FALSE(job("q", new_id).is_null());
  EXPECT_FALSE(row("SELECT maintain_on IS NULL FROM {s}.queue WHERE name = 'q'")[0].as<bool>());
  // Claimed a moment ago: the next sweep within the interval does nothing.
  exec("UPDATE {s}.job SET completed_on = now() - interval '1 minute'");
  EXPECT_EQ(client_->deletion_sweep({"q"}, std::chrono::seconds(3600)), 0);
}

// Inserts one job of queue `q` directly: `state`, finished `ago` seconds back (or never when
// `ago` < 0), deleted `deletion` seconds after finishing, kept queued until `keep` seconds from
// now. Returns its id.
std::string add_job(const std::function<pqxx::row(const std::string&)>& row, const std::string& q,
                    const std::string& state, int ago, int deletion = 604800, int keep = 3600) {
  return row(fmt::format(
      "INSERT INTO {{s}}.job (name, state, completed_on, deletion_seconds, keep_until) "
      "VALUES ('{}', '{}', {}, {}, now() + interval '{} s') RETURNING id",
      q, state, ago < 0 ? "NULL" : fmt::format("now() - interval '{} s'", ago), deletion, keep))[0]
      .as<std::string>();
}

// What a full maintenance walk leaves on the queue row and in the tables, for one queue.
struct Maintained {
  int retained_count = -1;
  int total_count = -1;
  double retained_on_lag = 0;  // maintain_on - retained_on, in seconds
  std::string job_states;      // the surviving jobs' states, sorted
  int dependencies = -1;       // job_dependency rows left that name the queue
  bool operator==(const Maintained&) const = default;
  friend void PrintTo(const Maintained& m, std::ostream* os) {
    *os << "retained_count " << m.retained_count << ", total_count " << m.total_count
        << ", retained_on lag " << m.retained_on_lag << " s, jobs [" << m.job_states << "], "
        << m.dependencies << " dependencies";
  }
};

// pg-boss's own maintenance and ours must leave identical queue rows: the same jobs set up in two
// queues, one maintained by deletion_sweep, the other by the real pg-boss 12.38 (a supervise()
// pass through tests/interop/pgboss_tool.mjs). Its monitor claim is stamped first, so that pass
// only maintains (a monitor pass would recount the live counts, which our sweep does not do).
TEST_F(ClientTest, DeletionSweepKeepsRetainedCountsAndDependenciesAsPgBossDoes) {
  auto sql_row = [this](const std::string& sql) { return row(sql); };
  // Everything but the just-finished jobs, which are added right before each pass so that both
  // passes see them inside DELTA_LAG.
  std::map<std::string, std::map<std::string, std::string>> ids;
  for (const std::string q : {"ours", "theirs"}) {
    client_->create_queue(q);
    auto& id = ids[q];
    for (int i = 0; i < 3; ++i)
      add_job(sql_row, q, "completed", 3600, 60);  // deleted
    for (int i = 0; i < 4; ++i)
      id["kept" + std::to_string(i)] = add_job(sql_row, q, "completed", 3600);  // retained
    add_job(sql_row, q, "completed", 3600, 0);                                  // never deleted
    for (int i = 0; i < 2; ++i)
      add_job(sql_row, q, "cancelled", 1800);    // retained
    add_job(sql_row, q, "cancelled", 3600, 60);  // deleted
    add_job(sql_row, q, "failed", 3600);         // kept, not retained
    add_job(sql_row, q, "failed", 3600, 60);     // deleted: failed jobs expire too
    for (int i = 0; i < 2; ++i)
      add_job(sql_row, q, "created", -1, 604800, -60);  // queued past keep_until: deleted
    for (int i = 0; i < 3; ++i)
      id["queued" + std::to_string(i)] = add_job(sql_row, q, "created", -1);
    add_job(sql_row, q, "active", -1);
    const std::string gone = add_job(sql_row, q, "completed", 3600, 60);
    // Stale counts from an earlier pass; total_count is rebuilt from the live ones.
    exec(
        "UPDATE {s}.queue SET retained_count = 100, retained_on = now() - interval '1 day', "
        "queued_count = 5, active_count = 1, failed_count = 2, total_count = 999 "
        "WHERE name = '" +
        q + "'");
    // Dependencies: both jobs there (kept), child missing, parent missing, and one whose child
    // the walk itself deletes (orphaned by this very pass).
    const auto dep = [&](const std::string& child, const std::string& parent) {
      exec(fmt::format("INSERT INTO {{s}}.job_dependency VALUES ('{0}', '{1}', '{0}', '{2}')", q,
                       child, parent));
    };
    dep(id["queued0"], id["kept0"]);
    dep(id["queued1"], id["kept1"]);
    dep("00000000-0000-4000-8000-000000000001", id["kept2"]);
    dep(id["queued2"], "00000000-0000-4000-8000-000000000002");
    dep(gone, id["kept3"]);
  }
  exec("UPDATE {s}.queue SET monitor_on = now(), monitor_claim_on = now() WHERE name = 'theirs'");

  for (int i = 0; i < 2; ++i)
    add_job(sql_row, "ours", "completed", 1);
  EXPECT_EQ(client_->deletion_sweep({"ours"}, std::chrono::seconds(3600)), 8);

  for (int i = 0; i < 2; ++i)
    add_job(sql_row, "theirs", "completed", 1);
  const auto pass =
      test::run_process({"node", std::string(YW_SOURCE_DIR) + "/tests/interop/pgboss_tool.mjs",
                         "supervise", schema_->url(), schema_->name(), "theirs"});
  ASSERT_EQ(pass.exit_code, 0) << pass.out << pass.err;

  const auto maintained = [this](const std::string& q) {
    const auto r = row(
        "SELECT retained_count, total_count, extract(epoch FROM maintain_on - retained_on), "
        "(SELECT string_agg(state::text, ',' ORDER BY state::text) FROM {s}.job WHERE name = '" +
        q + "'), (SELECT count(*) FROM {s}.job_dependency WHERE child_name = '" + q +
        "' OR parent_name = '" + q + "') FROM {s}.queue WHERE name = '" + q + "'");
    return Maintained{r[0].as<int>(), r[1].as<int>(), r[2].as<double>(), r[3].as<std::string>(),
                      r[4].as<int>()};
  };
  Maintained ours = maintained("ours");
  Maintained theirs = maintained("theirs");
  // retained_on is the walk's start less DELTA_LAG (10 s): compared within a second, then the
  // rest exactly.
  EXPECT_NEAR(ours.retained_on_lag, 10.0, 1.0);
  EXPECT_NEAR(theirs.retained_on_lag, 10.0, 1.0);
  ours.retained_on_lag = theirs.retained_on_lag = 0;
  EXPECT_EQ(ours, theirs);
  // And from the definitions: 4 + 1 completed and 2 cancelled retained; total = cached live
  // counts (5 + 1 + 2) + retained + the 2 that finished inside DELTA_LAG.
  EXPECT_EQ(ours.retained_count, 7);
  EXPECT_EQ(ours.total_count, 17);
  EXPECT_EQ(ours.job_states,
            "active,cancelled,cancelled,completed,completed,completed,completed,completed,"
            "completed,completed,created,created,created,failed");
  EXPECT_EQ(ours.dependencies, 2);
  EXPECT_EQ(row("SELECT count(*) FROM {s}.job_dependency WHERE child_id = '" +
                ids["ours"]["queued0"] + "' AND parent_id = '" + ids["ours"]["kept0"] + "'")[0]
                .as<int>(),
            1);

  const auto doctor = test::run_process({test::pgboss_cli(), "doctor", "--connection-string",
                                         schema_->url(), "--schema", schema_->name()});
  EXPECT_EQ(doctor.exit_code, 0) << doctor.out << doctor.err;
}

// A walk that fails part-way takes only what its committed batches deleted off the counts
// (reduceRetainedCount), and the pass hands back the claims of the queues it did not finish
// (releaseQueueDeletionTime); a queue finished before the failure keeps its claim.
TEST_F(ClientTest, DeletionSweepCutShortReducesTheCountsAndReleasesUnfinishedClaims) {
  for (const std::string q : {"a", "q", "z"})
    client_->create_queue(q);
  // 10,000 expired jobs fill the first batch exactly (ids below every random one); the last key
  // of the queue is a job whose delete the trigger refuses, so the second batch fails.
  exec(
      "INSERT INTO {s}.job (id, name, state, completed_on, deletion_seconds) "
      "SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'q', "
      "'completed', now() - interval '1 hour', 60 FROM generate_series(1, 10000) i");
  exec(
      "INSERT INTO {s}.job (id, name, state, completed_on, deletion_seconds, data) VALUES "
      "('ffffffff-ffff-4fff-bfff-ffffffffffff', 'q', 'completed', now() - interval '1 hour', 60, "
      "'\"refuse\"')");
  exec(
      "CREATE FUNCTION {s}.yw_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF OLD.data = '\"refuse\"' THEN RAISE EXCEPTION 'refused'; END IF; RETURN OLD; END $$");
  exec(
      "CREATE TRIGGER yw_refuse BEFORE DELETE ON {s}.job_common FOR EACH ROW "
      "EXECUTE FUNCTION {s}.yw_refuse()");
  exec(
      "UPDATE {s}.queue SET retained_count = 10500, retained_on = now(), total_count = 20000 "
      "WHERE name = 'q'");

  EXPECT_THROW(client_->deletion_sweep({"a", "q", "z"}, std::chrono::seconds(3600)),
               std::exception);
  auto r = row("SELECT retained_count, total_count FROM {s}.queue WHERE name = 'q'");
  EXPECT_EQ(r[0].as<int>(), 500);
  EXPECT_EQ(r[1].as<int>(), 10000);
  EXPECT_EQ(row("SELECT count(*) FROM {s}.job WHERE name = 'q'")[0].as<int>(), 1);
  EXPECT_EQ(row("SELECT string_agg(name || ':' || (maintain_on IS NOT NULL)::text, ',' "
                "ORDER BY name) FROM {s}.queue")[0]
                .as<std::string>(),
            "a:true,q:false,z:false");

  // The next pass takes the released queues up again at once and, walking all of q, sets the
  // counts afresh.
  exec("DROP TRIGGER yw_refuse ON {s}.job_common");
  exec("DROP FUNCTION {s}.yw_refuse()");
  EXPECT_EQ(client_->deletion_sweep({"a", "q", "z"}, std::chrono::seconds(3600)), 1);
  r =
      row("SELECT retained_count, total_count, retained_on IS NOT NULL FROM {s}.queue "
          "WHERE name = 'q'");
  EXPECT_EQ(r[0].as<int>(), 0);
  EXPECT_EQ(r[1].as<int>(), 0);
  EXPECT_TRUE(r[2].as<bool>());
  EXPECT_EQ(row("SELECT count(*) FROM {s}.queue WHERE maintain_on IS NULL")[0].as<int>(), 0);
}

// A claim another pass took since keeps its stamp: the release only clears its own.
TEST_F(ClientTest, ReleaseQueueDeletionTimeOnlyClearsItsOwnStamp) {
  client_->create_queue("q");
  exec("UPDATE {s}.queue SET maintain_on = '2024-01-02T03:04:05.123456Z' WHERE name = 'q'");
  const auto release = [this](const std::string& stamp) {
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    tx.exec_params(sql::release_queue_deletion_time(schema_->name()), "{q}", stamp);
    return tx.exec1(fmt::format("SELECT maintain_on IS NULL FROM {}.queue", schema_->name()))[0]
        .as<bool>();
  };
  EXPECT_FALSE(release("2024-01-02T03:04:05.123457Z"));
  EXPECT_TRUE(release("2024-01-02T03:04:05.123456Z"));
}

TEST_F(ClientTest, SendNotifiesOnlyForNotifyQueuesAndRunnableJobs) {
  client_->create_queue("quiet");
  client_->create_queue("loud", {{"notify", true}});
  std::mutex m;
  std::vector<std::string> heard;
  Listener listener(schema_->url(), client_->notify_channel(), [&](const std::string& q) {
    std::lock_guard lock(m);
    heard.push_back(q);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!listener.listening() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(listener.listening());
  client_->send("quiet", {json{1}, json::object()});
  client_->send("loud", {json{1}, {{"startAfter", 600}}});
  client_->send("loud", {json{2}, json::object()});
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  std::lock_guard lock(m);
  // "" is the listener's own "connected: fetch everything" signal.
  std::vector<std::string> named;
  for (auto& h : heard)
    if (!h.empty()) named.push_back(h);
  EXPECT_EQ(named, std::vector<std::string>{"loud"});
  EXPECT_EQ(client_->notify_channel().substr(0, 7), "pgboss_");
  EXPECT_EQ(client_->notify_channel().size(), 31u);
}

TEST_F(ClientTest, PartitionedQueuesUseTheirOwnTable) {
  client_->create_queue("p", {{"partition", true}});
  const QueueInfo info = client_->queue("p");
  EXPECT_EQ(info.table_name.size(), 57u);
  const auto id = *client_->send("p", {json{1}, json::object()});
  auto jobs = client_->fetch("p", 1);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(client_->complete("p", {{id, 0, json{{"ok", true}}}}).size(), 1u);
  EXPECT_EQ(row("SELECT count(*) FROM {s}." + info.table_name)[0].as<int>(), 1);
}

}  // namespace
}  // namespace yw::queue
