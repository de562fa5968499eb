#include "yw/queue/client.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <utility>

#include <pqxx/pqxx>

#include "pgboss/sql.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/queue/schema.hpp"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer, in sanitizer builds only, for every binary that talks to the database through
// this client (the worker and the tests). libpqxx 6.4 (Debian 12) leaks libpq's error result
// when a connection breaks while a statement runs (exec, exec_params, exec_prepared):
// connection_base::make_result asks the dead connection for its client encoding, which throws,
// before the pqxx::result owns the PGresult. A pooler restart under load does that
// (PgbouncerTest), and so does a backend terminated mid-transaction (ClientTest); this code
// holds every result it gets in a pqxx::result. libpqxx 7 builds the result first.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:pqxx::connection_base::exec\n";
}
#endif

namespace yw::queue {
namespace {

using nlohmann::json;

enum SettleKind { kComplete = 0, kFail = 1, kFailTerminal = 2 };

// pg-boss allows queue names of [A-Za-z0-9_.\-/]+ only; the name is also spliced into nothing but
// parameters, so this is pg-boss's rule, not an injection guard.
void validate_queue_name(std::string_view name) {
  const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '/';
  });
  if (!ok) {
    throw ConfigError(fmt::format(
        "queue name '{}': pg-boss allows only letters, digits, '_', '.', '-' and '/'", name));
  }
}

// The physical table comes from the database and is spliced into SQL, so it must be exactly one
// of the two shapes pg-boss creates.
void validate_table_name(const std::string& table) {
  bool ok = table == "job_common";
  if (!ok && table.size() == 57 && table[0] == 'j') {
    ok = std::all_of(table.begin() + 1, table.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  }
  YW_CHECK(ok, "pg-boss queue table '{}' is not one pg-boss creates", table);
}

bool known_policy(std::string_view policy) {
  return std::any_of(std::begin(kPolicies), std::end(kPolicies),
                     [&](const char* p) { return policy == p; });
}

// Option keys pg-boss's send() accepts that map onto job columns, with the JSON type each needs.
enum class OptType { integer, boolean, text, start_after, uuid };
const std::map<std::string, OptType, std::less<>>& send_option_types() {
  static const std::map<std::string, OptType, std::less<>> types = {
      {"id", OptType::uuid},
      {"priority", OptType::integer},
      {"startAfter", OptType::start_after},
      {"singletonKey", OptType::text},
      {"singletonSeconds", OptType::integer},
      {"singletonOffset", OptType::integer},
      {"retryLimit", OptType::integer},
      {"retryDelay", OptType::integer},
      {"retryBackoff", OptType::boolean},
      {"retryDelayMax", OptType::integer},
      {"expireInSeconds", OptType::integer},
      {"deleteAfterSeconds", OptType::integer},
      {"retentionSeconds", OptType::integer},
      {"deadLetter", OptType::text},
      {"heartbeatSeconds", OptType::integer},
      {"groupId", OptType::text},
      {"groupTier", OptType::text},
  };
  return types;
}

// One element of insert_jobs' recordset: the options checked and normalised, plus `data`.
json job_record(const SendJob& job) {
  YW_CHECK_INPUT(job.options.is_object() || job.options.is_null(),
                 "send options: expected a JSON object");
  json rec = json::object();
  if (job.options.is_object()) {
    for (const auto& [key, value] : job.options.items()) {
      const auto it = send_option_types().find(key);
      YW_CHECK_INPUT(it != send_option_types().end(), "send options: unknown option '{}'", key);
      if (value.is_null()) continue;
      switch (it->second) {
        case OptType::integer:
          YW_CHECK_INPUT(value.is_number_integer(), "send options: {} must be an integer", key);
          rec[key] = value;
          break;
        case OptType::boolean:
          YW_CHECK_INPUT(value.is_boolean(), "send options: {} must be true or false", key);
          rec[key] = value;
          break;
        case OptType::text:
        case OptType::uuid:
          YW_CHECK_INPUT(value.is_string(), "send options: {} must be a string", key);
          rec[key] = value;
          break;
        case OptType::start_after:
          // Seconds (a number) become an interval text, as pg-boss does; strings pass through.
          if (value.is_number()) {
            YW_CHECK_INPUT(value.get<double>() >= 0, "send options: startAfter must be >= 0");
            rec[key] = value.is_number_integer() ? std::to_string(value.get<long long>())
                                                 : fmt::format("{} seconds", value.get<double>());
          } else {
            YW_CHECK_INPUT(value.is_string(),
                           "send options: startAfter must be seconds or an ISO 8601 time");
            rec[key] = value;
          }
          break;
      }
    }
  }
  if (rec.contains("singletonSeconds")) {
    YW_CHECK_INPUT(rec["singletonSeconds"].get<long long>() > 0,
                   "send options: singletonSeconds must be positive");
  }
  if (!job.data.is_null()) rec["data"] = job.data;
  return rec;
}

std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i)
    out += (i ? "," : "") + ids[i];
  return out + "}";
}

// Elements double-quoted, so no name reads as NULL; queue names hold no quotes.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i)
    out += fmt::format("{}\"{}\"", i ? "," : "", items[i]);
  return out + "}";
}

// The attempt fence's parameter: {"<id>": retry_count, ...} (ids are UUIDs: nothing to escape).
std::string attempts_object(const std::vector<std::pair<std::string, int>>& attempts) {
  std::string out = "{";
  for (std::size_t i = 0; i < attempts.size(); ++i)
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", i ? "," : "", attempts[i].first,
                   attempts[i].second);
  return out + "}";
}

// The three parameters every fenced settle statement takes: the ids, the attempt fence and
// each job's own output ({"<id>": output}).
struct SettleParams {
  std::string ids, attempts, outputs;
};
SettleParams settle_params(const std::vector<Settle>& jobs) {
  std::vector<std::string> ids;
  std::vector<std::pair<std::string, int>> attempts;
  json outputs = json::object();
  for (const auto& j : jobs) {
    ids.push_back(j.id);
    attempts.emplace_back(j.id, j.retry_count);
    outputs[j.id] = j.output;
  }
  return {uuid_array(ids), attempts_object(attempts), outputs.dump()};
}

std::optional<int> opt_int(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int>();
}
std::optional<std::string> opt_text(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

std::string sqlstate_of(const std::exception& e) {
  if (const auto* s = dynamic_cast<const pqxx::sql_error*>(&e)) return s->sqlstate();
  return {};
}

// Runs `fn(connection)` on a pooled connection; a connection that broke is dropped, and the
// error rethrown as a yw::Error saying the database connection was lost.
// Whether the connection `fn` runs on may keep named prepared statements (set for the call by
// with_connection from the pool's configuration; see exec_prepared).
thread_local bool t_named_statements = true;

template <typename Fn>
auto with_connection(ConnectionPool& pool, Fn&& fn) {
  auto conn = pool.acquire();
  const bool outer = std::exchange(t_named_statements, pool.config().named_statements);
  struct Restore {
    bool value;
    ~Restore() { t_named_statements = value; }
  } restore{outer};
  try {
    return fn(*conn);
  } catch (const std::exception& e) {
    if (is_connection_error(e)) {
      conn.discard();
      throw Error(fmt::format("database connection lost: {}", e.what()));
    }
    throw;
  }
}

// Runs `sql` as a prepared statement on the transaction's connection, named after the text's
// hash: the hot statements are planned once per connection instead of on every call (planning
// was about a third of the claim's server time). A connection replaced after a loss prepares
// them again on first use. Behind a transaction-mode pooler consecutive transactions land on
// different server connections, where a named statement is missing or already exists
// (real-world.md §3): there the statement is sent unnamed, parsed and run in one round trip.
template <typename... Args>
pqxx::result exec_prepared(pqxx::transaction_base& tx, const std::string& sql, Args&&... args) {
  if (!t_named_statements) return tx.exec_params(sql, std::forward<Args>(args)...);
  const std::string name = fmt::format("yw_{:016x}", std::hash<std::string>{}(sql));
  tx.conn().prepare(name, sql);
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// The tier limits of a groupConcurrency option as the jsonb text the fetch takes, after checking
// the option as pg-boss does (every limit an integer >= 1, tier names non-empty).
std::string group_tiers_json(const std::optional<GroupConcurrency>& groups) {
  if (!groups) return {};
  if (groups->default_limit < 1) {
    throw InputError(fmt::format("groupConcurrency: default must be an integer >= 1, got {}",
                                 groups->default_limit));
  }
  json tiers = json::object();
  for (const auto& [tier, n] : groups->tiers) {
    if (tier.empty()) throw InputError("groupConcurrency: tier names must not be empty");
    if (n < 1) {
      throw InputError(
          fmt::format("groupConcurrency: tier '{}' must be an integer >= 1, got {}", tier, n));
    }
    tiers[tier] = n;
  }
  return tiers.dump();
}

std::vector<std::string> ids_of(const pqxx::result& r) {
  std::vector<std::string> ids;
  ids.reserve(r.size());
  for (const auto& row : r)
    ids.push_back(row[0].as<std::string>());
  return ids;
}

// A transaction like pg-boss's locked(): bounded lock waits, then the advisory lock.
void begin_locked(pqxx::work& tx, const std::string& schema, std::string_view suffix) {
  tx.exec("SET LOCAL lock_timeout = 30000");
  tx.exec("SET LOCAL idle_in_transaction_session_timeout = 30000");
  tx.exec(sql::advisory_lock(schema, suffix));
}

// Runs a key-ordered walk (plans.ts #walk): `batch(cursor)` runs and commits one batch and
// returns the next cursor, "" once the walk has reached the end of the queue.
template <typename Batch>
void walk(Batch&& batch) {
  std::string cursor;
  do {
    cursor = batch(cursor);
  } while (!cursor.empty());
}

// plans.ts DELETION_BATCH_SIZE and DEPENDENCY_CLEANUP_BATCH_SIZE.
constexpr int kWalkBatch = 10'000;
// plans.ts DELTA_LAG_SECONDS, in milliseconds: the walk counts as retained only the
// completed/cancelled jobs that finished this long before it started, so that a completion
// committed late is still ahead of retained_on and a monitor pass counts it afterwards.
constexpr long long kDeltaLagMs = 10'000;

// One queue of the maintenance pass (boss.ts #maintainQueue): the retention walk with its
// retained_count bookkeeping, then the job_dependency cleanup by child and by parent. Each batch
// is its own transaction under pg-boss's advisory lock for the table. Returns how many jobs it
// deleted; throws when a batch fails, after taking what the committed batches deleted off the
// queue's counts.
int maintain_queue(ConnectionPool& pool, const std::string& schema, const QueueInfo& info) {
  const std::string& t = info.table_name;
  const long long now_ms = with_connection(pool, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec1(sql::get_time(schema))[0].as<long long>();
  });
  const long long retained_before = now_ms - kDeltaLagMs;
  // Totals of the batches that committed, so they hold even when a later batch throws.
  int retained = 0;
  int deleted = 0;
  int deleted_retained = 0;
  try {
    walk([&](const std::string& after) {
      return with_connection(pool, [&](pqxx::connection& c) {
        pqxx::work tx(c);
        begin_locked(tx, schema, t + "deletion");
        const auto row = tx.exec_params1(sql::deletion_batch(schema, t), info.name, after,
                                         kWalkBatch, retained_before);
        tx.commit();
        deleted += row[1].as<int>();
        deleted_retained += row[2].as<int>();
        retained += row[3].as<int>();
        return row[0].is_null() ? std::string() : row[0].as<std::string>();
      });
    });
  } catch (...) {
    // A walk cut short has not counted what it kept, so it only takes what it deleted off the
    // counts (as a bulk delete does); the next full walk sets them. A failure here is logged so
    // that it does not hide the batch's own error.
    if (deleted > 0) {
      try {
        with_connection(pool, [&](pqxx::connection& c) {
          pqxx::nontransaction tx(c);
          tx.exec_params(sql::reduce_retained_count(schema), info.name, deleted_retained, deleted);
          return 0;
        });
      } catch (const std::exception& r) {
        log(LogLevel::warn, "queue", "could not reduce the retained count after a failed walk",
            {field("queue", info.name), field("error", r.what())});
      }
    }
    throw;
  }
  // Only a walk that covered the whole queue has counted everything it kept.
  with_connection(pool, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_params(sql::set_retained_count(schema, t), info.name, retained, retained_before);
    return 0;
  });
  // A dependency row is orphaned when either of its jobs is gone: walk both sides.
  for (const auto side : {sql::DependencySide::child, sql::DependencySide::parent}) {
    walk([&](const std::string& after) {
      return with_connection(pool, [&](pqxx::connection& c) {
        pqxx::work tx(c);
        begin_locked(tx, schema, t + "cleanupDependencies");
        const auto row = tx.exec_params1(sql::cleanup_dependencies(schema, t, side), info.name,
                                         after, kWalkBatch);
        tx.commit();
        return row[0].is_null() ? std::string() : row[0].as<std::string>();
      });
    });
  }
  return deleted;
}

std::vector<std::string> insert_with(pqxx::transaction_base& tx, const std::string& schema,
                                     const QueueInfo& info, const std::vector<SendJob>& jobs) {
  json records = json::array();
  for (const auto& j : jobs)
    records.push_back(job_record(j));
  const auto r = exec_prepared(tx, sql::insert_jobs(schema, info.table_name, info.notify),
                               records.dump(), info.name);
  return ids_of(r);
}

}  // namespace

bool is_connection_error(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  // A COMMIT whose connection died before its answer (pqxx::work's commit() throws this, not
  // broken_connection). Every transaction here is safe to repeat: settles are fenced (a repeated
  // completion changes nothing, so its child jobs are not sent twice), queue creation and the
  // sweeps are idempotent.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return true;
  if (const auto* err = dynamic_cast<const Error*>(&e)) {
    return std::strncmp(err->what(), "database connection lost", 24) == 0;
  }
  const std::string state = sqlstate_of(e);
  return state.rfind("08", 0) == 0 || state.rfind("57P0", 0) == 0;
}

json stored_output(const json& result) {
  if (result.is_null() || result.is_discarded()) return nullptr;
  if (result.is_object()) return result;
  return json{{"value", result}};
}

json error_output(std::string_view name, std::string_view message, std::string_view stack) {
  return json{{"name", name}, {"message", message}, {"stack", stack}};
}

PgBossClient::PgBossClient(ConnectionPool& pool, std::string schema)
    : pool_(pool), schema_(std::move(schema)) {
  validate_schema_name(schema_);
}

int PgBossClient::check_version() {
  return with_connection(pool_,
                         [&](pqxx::connection& c) { return check_schema_version(c, schema_); });
}

void PgBossClient::create_queue(const std::string& name, json options) {
  validate_queue_name(name);
  if (!options.is_object()) options = json::object();
  if (!options.contains("policy")) options["policy"] = "standard";
  const std::string policy =
      options["policy"].is_string() ? options["policy"].get<std::string>() : std::string("?");
  if (!known_policy(policy)) {
    throw ConfigError(fmt::format("queue '{}': unknown pg-boss policy '{}'", name, policy));
  }
  if (options.contains("deadLetter")) validate_queue_name(options["deadLetter"].get<std::string>());
  with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::work tx(c);
    begin_locked(tx, schema_, "create-queue");
    tx.exec_params(sql::create_queue(schema_), name, options.dump());
    tx.commit();
    return 0;
  });
  invalidate(name);
}

QueueInfo PgBossClient::queue(const std::string& name) {
  return queue_via(name, nullptr);
}

QueueInfo PgBossClient::queue_via(const std::string& name, pqxx::transaction_base* tx) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(name); it != cache_.end() && now - it->second.second < refresh_)
      return it->second.first;
  }
  const pqxx::result r =
      tx != nullptr ? tx->exec_params(sql::get_queues(schema_), text_array({name}))
                    : with_connection(pool_, [&](pqxx::connection& c) {
                        pqxx::nontransaction ntx(c);
                        return ntx.exec_params(sql::get_queues(schema_), text_array({name}));
                      });
  YW_CHECK(!r.empty(), "pg-boss queue '{}' does not exist in schema '{}'", name, schema_);
  const auto& row = r[0];
  QueueInfo info;
  info.name = row["name"].as<std::string>();
  info.policy = row["policy"].as<std::string>();
  info.table_name = row["table_name"].as<std::string>();
  info.notify = row["notify"].as<bool>();
  info.retry_limit = row["retry_limit"].as<int>();
  info.retry_delay = row["retry_delay"].as<int>();
  info.retry_backoff = row["retry_backoff"].as<bool>();
  info.retry_delay_max = opt_int(row["retry_delay_max"]);
  info.expire_seconds = row["expire_seconds"].as<int>();
  info.retention_seconds = row["retention_seconds"].as<int>();
  info.deletion_seconds = row["deletion_seconds"].as<int>();
  info.dead_letter = opt_text(row["dead_letter"]);
  info.heartbeat_seconds = opt_int(row["heartbeat_seconds"]);
  info.partition = row["partition"].as<bool>();
  validate_table_name(info.table_name);
  if (!known_policy(info.policy)) {
    throw ConfigError(fmt::format("queue '{}': policy '{}' is not implemented by this worker", name,
                                  info.policy));
  }
  std::lock_guard lock(cache_mutex_);
  cache_[name] = {info, now};
  return info;
}

void PgBossClient::invalidate(const std::string& name) {
  std::lock_guard lock(cache_mutex_);
  cache_.erase(name);
}

std::optional<std::string> PgBossClient::send(const std::string& queue, const SendJob& job) {
  auto ids = send_many(queue, {job});
  if (ids.empty()) return std::nullopt;
  return ids.front();
}

std::vector<std::string> PgBossClient::send_many(const std::string& queue,
                                                 const std::vector<SendJob>& jobs) {
  if (jobs.empty()) return {};
  const QueueInfo info = this->queue(queue);
  try {
    return with_connection(pool_, [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return insert_with(tx, schema_, info, jobs);
    });
  } catch (const pqxx::sql_error& e) {
    // A moved table (42P01) or a partition CHECK (23514) means our cached row is stale.
    if (e.sqlstate() == "42P01" || e.sqlstate() == "23514") invalidate(queue);
    throw;
  }
}

std::vector<Job> PgBossClient::fetch(const std::string& queue, int limit,
                                     const std::optional<GroupConcurrency>& groups) {
  if (limit <= 0) return {};
  const std::string tiers = group_tiers_json(groups);
  const QueueInfo info = this->queue(queue);
  pqxx::result r;
  try {
    r = with_connection(pool_, [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      if (groups) {
        return exec_prepared(
            tx, sql::fetch_next_job(schema_, info.table_name, info.policy, limit > 1, 3), queue,
            limit, groups->default_limit, tiers);
      }
      return exec_prepared(
          tx, sql::fetch_next_job(schema_, info.table_name, info.policy, limit > 1), queue, limit);
    });
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "23505") return {};
    if (e.sqlstate() == "42P01" || e.sqlstate() == "23514") invalidate(queue);
    throw;
  }
  return parse_claimed(queue, std::vector<pqxx::row>(r.begin(), r.end()), 0);
}

std::vector<Job> PgBossClient::complete_and_fetch(const std::string& queue,
                                                  const std::vector<Settle>& done, int limit,
                                                  std::vector<std::string>& completed,
                                                  const std::optional<GroupConcurrency>& groups) {
  if (done.empty()) return fetch(queue, limit, groups);
  const std::string tiers = group_tiers_json(groups);  // checked before anything is written
  if (limit <= 0) {
    completed = complete(queue, done);
    return {};
  }
  const QueueInfo info = this->queue(queue);
  const SettleParams p = settle_params(done);
  pqxx::result r;
  try {
    r = with_connection(pool_, [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      if (groups) {
        return exec_prepared(
            tx, sql::complete_and_fetch(schema_, info.table_name, info.policy, limit > 1, true),
            queue, limit, p.ids, p.attempts, p.outputs, groups->default_limit, tiers);
      }
      return exec_prepared(
          tx, sql::complete_and_fetch(schema_, info.table_name, info.policy, limit > 1), queue,
          limit, p.ids, p.attempts, p.outputs);
    });
  } catch (const pqxx::sql_error& e) {
    // The claim's policy race rolled the completion back with it: complete on its own.
    if (e.sqlstate() == "23505") {
      completed = complete(queue, done);
      return {};
    }
    if (e.sqlstate() == "42P01" || e.sqlstate() == "23514") invalidate(queue);
    throw;
  }
  std::vector<pqxx::row> claimed;
  completed.clear();
  for (const auto& row : r) {
    if (row[0].as<std::string>() == "d") {
      completed.push_back(row[1].as<std::string>());
    } else {
      claimed.push_back(row);
    }
  }
  return parse_claimed(queue, claimed, 1);
}

bool PgBossClient::claims_in_transaction(const std::string& queue) {
  const std::string policy = this->queue(queue).policy;
  return policy == "standard" || policy == "short";
}

PgBossClient::RunResult PgBossClient::claim_and_run(
    const std::string& queue, int limit,
    const std::function<std::vector<RunOutcome>(const std::vector<Job>&)>& run) {
  RunResult result;
  if (limit <= 0) return result;
  const QueueInfo info = this->queue(queue);
  YW_CHECK(info.policy == "standard" || info.policy == "short",
           "queue '{}': policy '{}' cannot be claimed inside a transaction", queue, info.policy);
  std::string xid;  // the transaction's id, to learn the outcome of a commit left in doubt
  bool in_doubt = false;
  try {
    with_connection(pool_, [&](pqxx::connection& c) {
      pqxx::work tx(c);
      const auto rows =
          exec_prepared(tx, sql::lock_next_jobs(schema_, info.table_name), queue, limit);
      result.claimed = rows.size();
      if (rows.empty()) {
        tx.commit();
        return 0;
      }
      xid = tx.exec1("SELECT txid_current()::text")[0].as<std::string>();
      const std::vector<Job> jobs =
          parse_claimed(queue, std::vector<pqxx::row>(rows.begin(), rows.end()), 0);
      std::vector<RunOutcome> outcomes = run(jobs);
      YW_CHECK(outcomes.size() == jobs.size(), "claim_and_run: {} outcomes for {} jobs",
               outcomes.size(), jobs.size());
      std::vector<Settle> completes, fails, terminals;
      // Children per child queue, in job order: one insert statement each.
      std::map<std::string, std::vector<SendJob>> children;
      for (auto& o : outcomes) {
        if (o.kind == RunOutcome::Kind::complete) {
          for (auto& [q, job] : o.children)
            children[q].push_back(std::move(job));
          completes.push_back(std::move(o.settle));
        } else {
          (o.kind == RunOutcome::Kind::fail ? fails : terminals).push_back(std::move(o.settle));
        }
      }
      if (!completes.empty()) {
        std::vector<std::string> ids;
        json outputs = json::object();
        for (const auto& j : completes) {
          ids.push_back(j.id);
          outputs[j.id] = j.output;
        }
        result.completed = ids_of(exec_prepared(tx, sql::complete_locked(schema_, info.table_name),
                                                queue, uuid_array(ids), outputs.dump()));
        // The rows are locked by this transaction: nobody else can have settled them.
        YW_CHECK(result.completed.size() == completes.size(),
                 "queue '{}': {} of {} locked jobs completed", queue, result.completed.size(),
                 completes.size());
      }
      for (const auto& [q, list] : children)
        insert_with(tx, schema_, queue_via(q, &tx), list);
      for (const auto& o : outcomes)
        if (o.kind == RunOutcome::Kind::complete)
          for (const auto& st : o.statements)
            tx.exec_params(st.sql, st.param);
      for (const bool terminal : {false, true}) {
        const auto& list = terminal ? terminals : fails;
        if (list.empty()) continue;
        const SettleParams p = settle_params(list);
        exec_prepared(tx, sql::start_locked(schema_, info.table_name), queue, p.ids);
        (terminal ? result.dead : result.failed) =
            ids_of(exec_prepared(tx, sql::fail_jobs(schema_, info.table_name, terminal), queue,
                                 p.ids, p.attempts, p.outputs));
      }
      try {
        tx.commit();
      } catch (const pqxx::in_doubt_error&) {
        in_doubt = true;
        throw;
      }
      return 0;
    });
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "42P01" || e.sqlstate() == "23514") invalidate(queue);
    throw;
  } catch (const std::exception& e) {
    if (!in_doubt) throw;
    // The server knows: a settled batch is reported as settled (its jobs must not be taken for
    // queued ones), a rolled-back one as the lost connection it was.
    const std::optional<bool> committed = transaction_committed(xid);
    if (committed == true) return result;
    throw Error(fmt::format("database connection lost at commit ({}); {}", e.what(),
                            committed ? "the transaction was rolled back"
                                      : "whether it committed could not be learnt"));
  }
  return result;
}

std::optional<bool> PgBossClient::transaction_committed(const std::string& xid) {
  // Up to 10 s: the server may still hold the transaction open until it sees the connection
  // gone, and a restarting pooler takes a moment to accept connections again.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    try {
      const pqxx::result r = with_connection(pool_, [&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx.exec_params("SELECT txid_status($1::bigint)", xid);
      });
      if (r.empty() || r[0][0].is_null()) return std::nullopt;  // too old to be known
      const std::string status = r[0][0].as<std::string>();
      if (status == "committed") return true;
      if (status == "aborted") return false;
    } catch (const std::exception& e) {
      if (!is_connection_error(e)) return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return std::nullopt;
}

std::vector<Job> PgBossClient::parse_claimed(const std::string& queue, std::vector<pqxx::row> rows,
                                             int first) {
  // RETURNING yields rows in update order; hand them out in claim order (priority, then age).
  // The keys are read once per row: parsing them inside the comparator cost more than the rest
  // of the claim's client side.
  struct Key {
    int priority;
    double created;
    std::size_t row;
  };
  std::vector<Key> order;
  order.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string_view created(rows[i][first + 8].c_str(), rows[i][first + 8].size());
    double epoch = 0;
    std::from_chars(created.data(), created.data() + created.size(), epoch);
    order.push_back({rows[i][first + 7].as<int>(), epoch, i});
  }
  std::stable_sort(order.begin(), order.end(), [](const Key& a, const Key& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.created < b.created;
  });
  std::vector<Job> jobs;
  jobs.reserve(rows.size());
  for (const Key& k : order) {
    const pqxx::row& row = rows[k.row];
    Job j;
    j.queue = queue;
    j.id = row[first].as<std::string>();
    if (!row[first + 1].is_null()) j.data = json::parse(row[first + 1].c_str());
    j.retry_count = row[first + 2].as<int>();
    j.expire_seconds = row[first + 3].as<int>();
    j.heartbeat_seconds = opt_int(row[first + 4]);
    j.group_id = opt_text(row[first + 5]);
    j.group_tier = opt_text(row[first + 6]);
    jobs.push_back(std::move(j));
  }
  return jobs;
}

std::vector<std::string> PgBossClient::settle(const std::string& queue,
                                              const std::vector<Settle>& jobs, int kind) {
  if (jobs.empty()) return {};
  const QueueInfo info = this->queue(queue);
  const SettleParams p = settle_params(jobs);
  const std::string statement =
      kind == kComplete ? sql::complete_jobs(schema_, info.table_name)
                        : sql::fail_jobs(schema_, info.table_name, kind == kFailTerminal);
  try {
    return with_connection(pool_, [&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return ids_of(exec_prepared(tx, statement, queue, p.ids, p.attempts, p.outputs));
    });
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "42P01" || e.sqlstate() == "23514") invalidate(queue);
    throw;
  }
}

std::vector<std::string> PgBossClient::complete(const std::string& queue,
                                                const std::vector<Settle>& jobs) {
  return settle(queue, jobs, kComplete);
}

std::vector<std::string> PgBossClient::fail(const std::string& queue,
                                            const std::vector<Settle>& jobs, bool terminal) {
  return settle(queue, jobs, terminal ? kFailTerminal : kFail);
}

bool PgBossClient::complete_with_children(const std::string& queue, const Settle& job,
                                          const ChildJobs& children,
                                          std::vector<std::optional<std::string>>* child_ids,
                                          const std::vector<TxStatement>& statements) {
  const QueueInfo info = this->queue(queue);
  std::vector<QueueInfo> child_infos;
  for (const auto& [q, _] : children)
    child_infos.push_back(this->queue(q));
  return with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::work tx(c);
    const SettleParams p = settle_params({job});
    const auto done = tx.exec_params(sql::complete_jobs(schema_, info.table_name), queue, p.ids,
                                     p.attempts, p.outputs);
    if (done.empty()) {
      tx.abort();
      return false;
    }
    std::vector<std::optional<std::string>> sent;
    for (std::size_t i = 0; i < children.size(); ++i) {
      auto ids = insert_with(tx, schema_, child_infos[i], {children[i].second});
      sent.push_back(ids.empty() ? std::nullopt : std::optional<std::string>(ids.front()));
    }
    for (const auto& st : statements)
      tx.exec_params(st.sql, st.param);
    tx.commit();
    if (child_ids != nullptr) *child_ids = std::move(sent);
    return true;
  });
}

std::vector<std::string> PgBossClient::touch(
    const std::string& queue, const std::vector<std::pair<std::string, int>>& attempts) {
  if (attempts.empty()) return {};
  const QueueInfo info = this->queue(queue);
  std::vector<std::string> ids;
  for (const auto& [id, retry] : attempts)
    ids.push_back(id);
  const std::string fence = attempts_object(attempts);
  return with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return ids_of(exec_prepared(tx, sql::touch_jobs(schema_, info.table_name), queue,
                                uuid_array(ids), fence));
  });
}

int PgBossClient::expire_sweep(const std::vector<std::string>& queues) {
  constexpr int kBatch = 1000;
  std::map<std::string, std::vector<std::string>> by_table;
  for (const auto& q : queues)
    by_table[this->queue(q).table_name].push_back(q);
  int failed = 0;
  for (const auto& [table, names] : by_table) {
    for (const bool heartbeat : {false, true}) {
      const std::string statement = heartbeat ? sql::fail_jobs_by_heartbeat(schema_, table)
                                              : sql::fail_jobs_by_timeout(schema_, table);
      const std::string lock = table + (heartbeat ? "failJobsByHeartbeat" : "failJobsByTimeout");
      while (true) {
        const int picked = with_connection(pool_, [&](pqxx::connection& c) {
          pqxx::work tx(c);
          begin_locked(tx, schema_, lock);
          const int n = tx.exec_params1(statement, text_array(names), kBatch)[0].as<int>();
          tx.commit();
          return n;
        });
        failed += picked;
        if (picked < kBatch) break;
      }
    }
  }
  return failed;
}

int PgBossClient::deletion_sweep(const std::vector<std::string>& queues,
                                 std::chrono::seconds interval) {
  // (name, stamp) of each queue claimed, in name order so that a pass is deterministic; one
  // statement, so one stamp for all of them.
  auto claimed = with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& row :
         tx.exec_params(sql::try_set_queue_deletion_time(schema_), text_array(queues),
                        static_cast<long long>(interval.count())))
      out.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
    return out;
  });
  std::sort(claimed.begin(), claimed.end());
  int deleted = 0;
  std::size_t finished = 0;
  try {
    for (; finished < claimed.size(); ++finished)
      deleted += maintain_queue(pool_, schema_, this->queue(claimed[finished].first));
  } catch (...) {
    // The claim covers every queue up front, so a pass that fails hands back the queues it did
    // not finish (the failed one included); otherwise they would wait a whole interval. A
    // failed release is logged, not thrown, so that the pass's own error is what the caller sees.
    std::vector<std::string> rest;
    for (std::size_t i = finished; i < claimed.size(); ++i)
      rest.push_back(claimed[i].first);
    try {
      with_connection(pool_, [&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        tx.exec_params(sql::release_queue_deletion_time(schema_), text_array(rest),
                       claimed[finished].second);
        return 0;
      });
    } catch (const std::exception& r) {
      log(LogLevel::warn, "queue", "could not release the maintenance claim",
          {field("error", r.what()), field("queues", static_cast<int>(rest.size()))});
    }
    throw;
  }
  return deleted;
}

std::string PgBossClient::notify_channel() {
  return with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec1(sql::notify_channel(schema_))[0].as<std::string>();
  });
}

std::int64_t PgBossClient::queue_depth(const std::string& queue) {
  const QueueInfo info = this->queue(queue);
  return with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec_params1(sql::queue_depth(schema_, info.table_name), queue)[0].as<std::int64_t>();
  });
}

json PgBossClient::get_job(const std::string& queue, const std::string& id) {
  const QueueInfo info = this->queue(queue);
  return with_connection(pool_, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    const auto r = tx.exec_params(sql::get_job_by_id(schema_, info.table_name), queue, id);
    return r.empty() ? json() : json::parse(r[0][0].c_str());
  });
}

}  // namespace yw::queue
