#include "pgboss/sql.hpp"

#include <fmt/format.h>

namespace yw::queue::sql {
namespace {

// pg-boss's RETAINED_STATES: the finished jobs retained_count counts.
constexpr std::string_view kRetainedStates = "state IN ('completed', 'cancelled')";
// The end of a walk batch's key range: the edge CTE's key, or the end of the queue without one.
constexpr std::string_view kMaxUuid = "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid";

// Every column of a job row, in one order, for the delete + re-insert of fail (protocol §6.1).
constexpr std::string_view kJobColumns =
    "id, name, priority, data, state, retry_limit, retry_count, retry_delay, retry_backoff, "
    "retry_delay_max, start_after, started_on, singleton_key, singleton_on, group_id, group_tier, "
    "expire_seconds, deletion_seconds, created_on, completed_on, keep_until, policy, output, "
    "dead_letter, heartbeat_on, heartbeat_seconds, blocked, blocking, pending_dependencies, "
    "source_name, source_id, source_created_on, source_retry_count, source_output, source_root_id, "
    "trace_context";

// The attempt fence of 12.38 (protocol §4.6): only the attempt this worker fetched, still active.
// pg-boss matches `id || ':' || retry_count` against a text array, a linear scan per row; the
// same test as a key lookup in a jsonb object {"<id>": retry_count} costs O(log n) per row, which
// matters for settles of hundreds of jobs. A missing id yields NULL, so the row is not matched.
std::string attempt_fence(int attempts_param) {
  return fmt::format("state = 'active' AND retry_count = (${}::jsonb ->> (id::text))::int",
                     attempts_param);
}

// The re-insert half of every fail (failJobsBody): `where` picks the rows to fail, `output` is the
// SQL expression stored as their output (it may read the deleted row's `id`). Retries left →
// `retry` with its delay/backoff; none left, or `terminal` → `failed` plus the dead-letter copy.
// A retry that conflicts with a policy index (ON CONFLICT) is stored as `failed` instead.
std::string fail_body(std::string_view s, std::string_view t, std::string_view where,
                      std::string_view output, bool terminal) {
  const std::string state =
      terminal ? fmt::format("'failed'::{}.job_state", s)
               : fmt::format(
                     "CASE WHEN retry_count < retry_limit THEN 'retry'::{0}.job_state "
                     "ELSE 'failed'::{0}.job_state END",
                     s);
  const std::string completed_on =
      terminal
          ? fmt::format("{}.job_now()", s)
          : fmt::format("CASE WHEN retry_count < retry_limit THEN NULL ELSE {}.job_now() END", s);
  // Backoff: uniform in [d·2^(e-1), d·2^e) seconds, d = max(retry_delay, 1),
  // e = min(16, retry_count + 1), capped by retry_delay_max when set (LEAST ignores NULL).
  const std::string start_after = fmt::format(
      "CASE WHEN retry_count = retry_limit THEN start_after "
      "WHEN NOT retry_backoff THEN {0}.job_now() + retry_delay * interval '1s' "
      "ELSE {0}.job_now() + LEAST(retry_delay_max, GREATEST(retry_delay, 1) * "
      "(2 ^ LEAST(16, retry_count + 1) / 2 + 2 ^ LEAST(16, retry_count + 1) / 2 * random())) "
      "* interval '1s' END",
      s);
  const auto values = [&](std::string_view st, std::string_view sa, std::string_view co) {
    return fmt::format(
        "id, name, priority, data, {st}, retry_limit, retry_count, retry_delay, retry_backoff, "
        "retry_delay_max, {sa}, started_on, singleton_key, singleton_on, group_id, group_tier, "
        "expire_seconds, deletion_seconds, created_on, {co}, keep_until, policy, {out}, "
        "dead_letter, NULL, heartbeat_seconds, blocked, blocking, pending_dependencies, "
        "source_name, source_id, source_created_on, source_retry_count, source_output, "
        "source_root_id, trace_context",
        fmt::arg("st", st), fmt::arg("sa", sa), fmt::arg("co", co), fmt::arg("out", output));
  };
  return fmt::format(
      "deleted_jobs AS (DELETE FROM {s}.{t} WHERE {where} RETURNING *), "
      "retried_jobs AS (INSERT INTO {s}.{t} ({cols}) SELECT {retry_values} FROM deleted_jobs "
      "ON CONFLICT DO NOTHING RETURNING *), "
      "failed_jobs AS (INSERT INTO {s}.{t} ({cols}) SELECT {failed_values} FROM deleted_jobs "
      "WHERE id NOT IN (SELECT id FROM retried_jobs) RETURNING *), "
      "results AS (SELECT * FROM retried_jobs UNION ALL SELECT * FROM failed_jobs), "
      "dlq_jobs AS (INSERT INTO {s}.job (name, priority, data, retry_limit, retry_backoff, "
      "retry_delay, start_after, created_on, keep_until, deletion_seconds, expire_seconds, "
      "singleton_key, group_id, group_tier, heartbeat_seconds, source_name, source_id, "
      "source_created_on, source_retry_count, source_output, source_root_id, trace_context) "
      "SELECT r.dead_letter, r.priority, r.data, q.retry_limit, q.retry_backoff, q.retry_delay, "
      "{s}.job_now(), {s}.job_now(), {s}.job_now() + q.retention_seconds * interval '1s', "
      "q.deletion_seconds, q.expire_seconds, r.singleton_key, r.group_id, r.group_tier, "
      "q.heartbeat_seconds, r.name, r.id, r.created_on, r.retry_count, r.output, "
      "COALESCE(r.source_root_id, r.id), r.trace_context "
      "FROM results r JOIN {s}.queue q ON q.name = r.dead_letter WHERE r.state = 'failed')",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("where", where), fmt::arg("cols", kJobColumns),
      fmt::arg("retry_values", values(state, start_after, completed_on)),
      fmt::arg("failed_values", values(fmt::format("'failed'::{}.job_state", s), "start_after",
                                       fmt::format("{}.job_now()", s))));
}

std::string expire_jobs(std::string_view s, std::string_view t, std::string_view predicate,
                        std::string_view output) {
  return fmt::format(
      "WITH picked AS (SELECT id FROM {s}.{t} WHERE {p} LIMIT $2), {body} "
      "SELECT (SELECT count(*) FROM picked)::int",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("p", predicate),
      fmt::arg("body",
               fail_body(s, t, fmt::format("{} AND id IN (SELECT id FROM picked)", predicate),
                         output, false)));
}

// pg-boss's candidates for a claim (protocol §4.1): rows of queue $1 still queued (created or
// retry), not blocked, whose start_after has come; `a` is the table alias with its dot, or empty.
// Every claim (fetch, complete-and-fetch, the transactional lock) selects with these two.
std::string candidate_filter(std::string_view a, std::string_view s) {
  return fmt::format(
      "{a}name = $1 AND {a}state < 'active' AND NOT {a}blocked AND {a}start_after <= {s}.job_now()",
      fmt::arg("a", a), fmt::arg("s", s));
}
// Highest priority first, then the oldest.
std::string candidate_order(std::string_view a) {
  return fmt::format("{a}priority DESC, {a}created_on", fmt::arg("a", a));
}
}  // namespace

std::string get_version(std::string_view schema) {
  return fmt::format("SELECT version FROM {}.version", schema);
}

std::string version_table_exists(std::string_view schema) {
  return fmt::format("SELECT to_regclass('{}.version') IS NOT NULL", schema);
}

std::string get_queues(std::string_view schema) {
  return fmt::format(
      "SELECT name, policy, table_name, notify, retry_limit, retry_delay, retry_backoff, "
      "retry_delay_max, expire_seconds, retention_seconds, deletion_seconds, dead_letter, "
      "heartbeat_seconds, partition FROM {}.queue WHERE name = ANY($1::text[])",
      schema);
}

std::string create_queue(std::string_view schema) {
  return fmt::format("SELECT {}.create_queue($1, $2::jsonb)", schema);
}

std::string advisory_lock(std::string_view schema, std::string_view suffix) {
  return fmt::format(
      "SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || "
      "'.pgboss.{}{}')::bytea), 'hex'))::bit(64)::bigint)",
      schema, suffix);
}

std::string notify_channel(std::string_view schema) {
  return fmt::format("SELECT 'pgboss_' || left(encode(sha224('{}'::bytea), 'hex'), 24)", schema);
}

std::string insert_jobs(std::string_view s, std::string_view t, bool notify) {
  // Options from the job, else the queue row, else pg-boss's defaults (protocol §8). The queue is
  // LEFT JOINed so a job for a queue that vanished fails on q_fkey instead of inserting nothing.
  const std::string insert = fmt::format(
      "INSERT INTO {s}.{t} (id, name, data, priority, start_after, created_on, singleton_key, "
      "singleton_on, group_id, group_tier, expire_seconds, deletion_seconds, keep_until, "
      "retry_limit, retry_delay, retry_backoff, retry_delay_max, policy, dead_letter, "
      "heartbeat_seconds, blocked, blocking, pending_dependencies) "
      "SELECT COALESCE(x.id, gen_random_uuid()), $2, x.data, COALESCE(x.priority, 0), "
      "x.sa, {s}.job_now(), x.\"singletonKey\", "
      "CASE WHEN x.\"singletonSeconds\" IS NOT NULL THEN 'epoch'::timestamp + '1s'::interval * "
      "(x.\"singletonSeconds\"::float8 * floor((date_part('epoch', {s}.job_now()) + "
      "COALESCE(x.\"singletonOffset\", 0)::float8) / x.\"singletonSeconds\"::float8)) END, "
      "x.\"groupId\", x.\"groupTier\", "
      "COALESCE(x.\"expireInSeconds\", q.expire_seconds, 900), "
      "COALESCE(x.\"deleteAfterSeconds\", q.deletion_seconds, 604800), "
      "x.sa + COALESCE(x.\"retentionSeconds\", q.retention_seconds, 1209600) * interval '1s', "
      "COALESCE(x.\"retryLimit\", q.retry_limit, 2), COALESCE(x.\"retryDelay\", q.retry_delay, 0), "
      "COALESCE(x.\"retryBackoff\", q.retry_backoff, false), "
      "COALESCE(x.\"retryDelayMax\", q.retry_delay_max), q.policy, "
      "COALESCE(x.\"deadLetter\", q.dead_letter), "
      "COALESCE(x.\"heartbeatSeconds\", q.heartbeat_seconds), false, false, 0 "
      "FROM (SELECT r.*, CASE WHEN right(r.\"startAfter\", 1) = 'Z' OR "
      "r.\"startAfter\" ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}' "
      "THEN CAST(r.\"startAfter\" AS timestamptz) "
      "ELSE {s}.job_now() + CAST(COALESCE(r.\"startAfter\", '0') AS interval) END AS sa "
      "FROM json_to_recordset($1::text::json) AS r (id uuid, priority integer, data jsonb, "
      "\"startAfter\" text, \"retryLimit\" integer, \"retryDelay\" integer, "
      "\"retryDelayMax\" integer, \"retryBackoff\" boolean, \"singletonKey\" text, "
      "\"singletonSeconds\" integer, \"singletonOffset\" integer, \"groupId\" text, "
      "\"groupTier\" text, \"expireInSeconds\" integer, \"deleteAfterSeconds\" integer, "
      "\"retentionSeconds\" integer, \"deadLetter\" text, \"heartbeatSeconds\" integer)) x "
      "LEFT JOIN {s}.queue q ON q.name = $2 "
      "ON CONFLICT DO NOTHING RETURNING id, start_after",
      fmt::arg("s", s), fmt::arg("t", t));
  if (!notify) return fmt::format("WITH ins AS ({}) SELECT id FROM ins", insert);
  // One NOTIFY per statement, only when a row is runnable now; delivered at commit (§9).
  return fmt::format(
      "WITH ins AS ({ins}), notified AS (SELECT pg_notify('pgboss_' || "
      "left(encode(sha224('{s}'::bytea), 'hex'), 24), $2) FROM ins "
      "WHERE start_after <= {s}.job_now() LIMIT 1) "
      "SELECT id FROM ins WHERE (SELECT count(*) FROM notified) >= 0",
      fmt::arg("ins", insert), fmt::arg("s", s));
}

std::string fetch_next_job(std::string_view s, std::string_view t, std::string_view policy,
                           bool batch, int group_param) {
  const bool strict_fifo = policy == "key_strict_fifo";
  const bool singleton = policy == "singleton" || policy == "stately";
  const bool ranked = singleton && batch;
  const bool grouped = group_param > 0;
  std::string heads;
  std::string extra;
  if (strict_fifo) {
    // Each key's head: a retry row first, then the oldest; a key with an active, retry or failed
    // job elsewhere is blocked (§4.3).
    heads = fmt::format(
        "heads AS MATERIALIZED (SELECT DISTINCT ON (h.singleton_key) h.id FROM {s}.{t} h "
        "WHERE h.name = $1 AND h.state < 'active' AND NOT h.blocked "
        "AND h.policy = 'key_strict_fifo' AND h.start_after <= {s}.job_now() "
        "ORDER BY h.singleton_key, h.state DESC, h.created_on, h.id), ",
        fmt::arg("s", s), fmt::arg("t", t));
    extra = fmt::format(
        " AND j.id IN (SELECT id FROM heads) AND NOT EXISTS (SELECT 1 FROM {s}.{t} b "
        "WHERE b.name = j.name AND b.singleton_key = j.singleton_key "
        "AND b.state IN ('active', 'retry', 'failed') AND b.policy = 'key_strict_fifo' "
        "AND b.id <> j.id)",
        fmt::arg("s", s), fmt::arg("t", t));
  } else if (singleton) {
    extra = fmt::format(
        " AND NOT EXISTS (SELECT 1 FROM {s}.{t} p WHERE p.name = j.name AND p.state = 'active' "
        "AND p.policy = '{pol}' AND COALESCE(p.singleton_key, '') = COALESCE(j.singleton_key, ''))",
        fmt::arg("s", s), fmt::arg("t", t), fmt::arg("pol", policy));
  }
  // Group concurrency (§4.4): the queue's active jobs per group, counted once per statement
  // into one jsonb object, so the limit holds across every worker of the queue. A candidate
  // whose group is already at its limit (tier's, else the default) is not selected at all.
  std::string counts;
  std::string group_cols;
  if (grouped) {
    counts = fmt::format(
        "gcounts AS MATERIALIZED (SELECT COALESCE(jsonb_object_agg(a.group_id, a.n), "
        "'{{}}'::jsonb) AS m FROM (SELECT group_id, count(*)::int AS n FROM {s}.{t} "
        "WHERE name = $1 AND state = 'active' AND group_id IS NOT NULL GROUP BY group_id) a), ",
        fmt::arg("s", s), fmt::arg("t", t));
    const std::string active = "COALESCE(((SELECT m FROM gcounts) ->> j.group_id)::int, 0)";
    const std::string limit_of = fmt::format(
        "COALESCE((${}::jsonb ->> j.group_tier)::int, ${}::int)", group_param + 1, group_param);
    extra += fmt::format(" AND (j.group_id IS NULL OR {} < {})", active, limit_of);
    group_cols = fmt::format(", j.group_id, j.group_tier, {} AS active_n, {} AS group_limit",
                             active, limit_of);
  }
  const std::string next = fmt::format(
      "next AS (SELECT j.id{key}{group} FROM {s}.{t} j WHERE {filter}{extra} "
      "ORDER BY {order} LIMIT $2 FOR UPDATE OF j SKIP LOCKED)",
      fmt::arg("key", ranked ? ", j.singleton_key" : ""), fmt::arg("group", group_cols),
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("filter", candidate_filter("j.", s)),
      fmt::arg("extra", extra), fmt::arg("order", candidate_order("j.")));
  const std::string ranking =
      ranked ? fmt::format(
                   ", ranking AS (SELECT id{}, row_number() OVER (PARTITION BY "
                   "singleton_key) AS rn FROM next)",
                   grouped ? ", group_id, active_n, group_limit" : "")
             : "";
  std::string ids = ranked ? "SELECT id FROM ranking WHERE rn = 1" : "SELECT id FROM next";
  std::string group_ranking;
  if (grouped) {
    // Within the batch, a group's candidates are numbered (by id, as pg-boss does); one whose
    // number plus the group's active count would pass the limit is left unclaimed.
    group_ranking = fmt::format(
        ", granked AS (SELECT id, group_id, active_n, group_limit, row_number() OVER "
        "(PARTITION BY group_id ORDER BY id) AS grn FROM {})",
        ranked ? "ranking WHERE rn = 1" : "next");
    ids = "SELECT id FROM granked WHERE group_id IS NULL OR active_n + grn <= group_limit";
  }
  return fmt::format(
      "WITH {heads}{counts}{next}{ranking}{granked} {update}", fmt::arg("heads", heads),
      fmt::arg("counts", counts), fmt::arg("next", next), fmt::arg("ranking", ranking),
      fmt::arg("granked", group_ranking),
      fmt::arg("update", fmt::format("UPDATE {s}.{t} j SET state = 'active', "
                                     "started_on = {s}.job_now(), heartbeat_on = {s}.job_now(), "
                                     "retry_count = CASE WHEN started_on IS NOT NULL THEN "
                                     "retry_count + 1 ELSE retry_count END "
                                     "WHERE name = $1 AND id = ANY(ARRAY({ids})) "
                                     "RETURNING id, data, retry_count, expire_seconds, "
                                     "heartbeat_seconds, group_id, group_tier, "
                                     "priority, extract(epoch FROM created_on)::float8",
                                     fmt::arg("s", s), fmt::arg("t", t), fmt::arg("ids", ids))));
}

std::string complete_and_fetch(std::string_view s, std::string_view t, std::string_view policy,
                               bool batch, bool grouped) {
  // fetch_next_job is "WITH <ctes> UPDATE …": splice the completion in front as one more CTE
  // and the claim behind as another. The two touch disjoint rows (active vs queued), so running
  // them in one statement changes neither's result; it only saves a commit.
  // The completions are not visible to the claim's snapshot, so a group slot they free counts
  // as taken until the next statement: the limit may be undershot once, never exceeded.
  const std::string fetch = fetch_next_job(s, t, policy, batch, grouped ? 6 : 0);
  const std::size_t update_at = fetch.rfind(") UPDATE ");
  const std::string ctes = fetch.substr(5, update_at + 1 - 5);  // after "WITH "
  const std::string claim = fetch.substr(update_at + 2);
  return fmt::format(
      "WITH done AS (UPDATE {s}.{t} SET completed_on = {s}.job_now(), state = 'completed', "
      "output = NULLIF($5::jsonb -> (id::text), 'null'::jsonb) "
      "WHERE name = $1 AND id = ANY($3::uuid[]) AND {fence} RETURNING id), "
      "{ctes}, claimed AS ({claim}) "
      "SELECT 'c' AS kind, claimed.* FROM claimed UNION ALL SELECT 'd', id, NULL::jsonb, "
      "NULL::int, "
      "NULL::int, NULL::int, NULL::text, NULL::text, NULL::int, NULL::float8 FROM done",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("fence", attempt_fence(4)),
      fmt::arg("ctes", ctes), fmt::arg("claim", claim));
}

std::string lock_next_jobs(std::string_view s, std::string_view t) {
  return fmt::format(
      "SELECT id, data, CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count "
      "END, expire_seconds, heartbeat_seconds, group_id, group_tier, priority, "
      "extract(epoch FROM created_on)::float8 FROM {s}.{t} WHERE {filter} "
      "ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("filter", candidate_filter("", s)),
      fmt::arg("order", candidate_order("")));
}

namespace {
// An UPDATE of rows this transaction locked (lock_next_jobs): `sets`, plus the claim's columns
// as fetch_next_job writes them (4.5). $1 queue, $2 uuid[] ids; returns the ids.
std::string update_locked(std::string_view s, std::string_view t, std::string_view sets) {
  return fmt::format(
      "UPDATE {s}.{t} SET {sets}, started_on = {s}.job_now(), heartbeat_on = {s}.job_now(), "
      "retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END "
      "WHERE name = $1 AND id = ANY($2::uuid[]) AND state < 'active' RETURNING id",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("sets", sets));
}
}  // namespace

std::string complete_locked(std::string_view s, std::string_view t) {
  // job_now() is the transaction's start, when the rows were locked: the claim's time. The
  // completion's time is that plus the time since, so a test clock still shifts both alike.
  return update_locked(
      s, t,
      fmt::format("state = 'completed', completed_on = {}.job_now() + (clock_timestamp() - now()), "
                  "output = NULLIF($3::jsonb -> (id::text), 'null'::jsonb)",
                  s));
}

std::string start_locked(std::string_view s, std::string_view t) {
  return update_locked(s, t, "state = 'active'");
}

std::string complete_jobs(std::string_view s, std::string_view t) {
  return fmt::format(
      "UPDATE {s}.{t} SET completed_on = {s}.job_now(), state = 'completed', "
      "output = NULLIF($4::jsonb -> (id::text), 'null'::jsonb) "
      "WHERE name = $1 AND id = ANY($2::uuid[]) AND {fence} RETURNING id",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("fence", attempt_fence(3)));
}

std::string fail_jobs(std::string_view s, std::string_view t, bool terminal) {
  return fmt::format(
      "WITH {} SELECT id FROM results",
      fail_body(s, t, fmt::format("name = $1 AND id = ANY($2::uuid[]) AND {}", attempt_fence(3)),
                "NULLIF($4::jsonb -> (id::text), 'null'::jsonb)", terminal));
}

std::string touch_jobs(std::string_view s, std::string_view t) {
  return fmt::format(
      "UPDATE {s}.{t} SET heartbeat_on = {s}.job_now() "
      "WHERE name = $1 AND id = ANY($2::uuid[]) AND {fence} RETURNING id",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("fence", attempt_fence(3)));
}

std::string fail_jobs_by_timeout(std::string_view s, std::string_view t) {
  return expire_jobs(
      s, t,
      fmt::format("state = 'active' AND (started_on + expire_seconds * interval '1s') < "
                  "{}.job_now() AND name = ANY($1::text[])",
                  s),
      "'{\"value\": {\"message\": \"job timed out\"}}'::jsonb");
}

std::string fail_jobs_by_heartbeat(std::string_view s, std::string_view t) {
  return expire_jobs(
      s, t,
      fmt::format("state = 'active' AND heartbeat_seconds IS NOT NULL AND (heartbeat_on + "
                  "heartbeat_seconds * interval '1s') < {}.job_now() AND name = ANY($1::text[])",
                  s),
      "'{\"value\": {\"message\": \"job heartbeat timeout\"}}'::jsonb");
}

std::string try_set_queue_deletion_time(std::string_view s) {
  // Rows locked in name order, skipping rows another instance holds (pg-boss queueRowLock). The
  // stamp comes back as UTC ISO text with microseconds, so handing it to
  // release_queue_deletion_time matches the stored value exactly whatever the session's DateStyle
  // or TimeZone.
  return fmt::format(
      "WITH due AS (SELECT name FROM {s}.queue WHERE name = ANY($1::text[]) AND "
      "EXTRACT(EPOCH FROM ({s}.job_now() - COALESCE(maintain_on, {s}.job_now() - "
      "interval '1 week'))) >= $2 ORDER BY name FOR NO KEY UPDATE SKIP LOCKED) "
      "UPDATE {s}.queue SET maintain_on = {s}.job_now() FROM due WHERE queue.name = due.name "
      "RETURNING queue.name, "
      "to_char(queue.maintain_on AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
      fmt::arg("s", s));
}

std::string release_queue_deletion_time(std::string_view s) {
  // Only rows still carrying this pass's stamp: a queue another instance claimed since keeps its
  // claim. Locked in name order like the claim, so the two cannot deadlock.
  return fmt::format(
      "UPDATE {s}.queue SET maintain_on = NULL FROM (SELECT name FROM {s}.queue "
      "WHERE name = ANY($1::text[]) AND maintain_on = $2::timestamptz "
      "ORDER BY name FOR NO KEY UPDATE SKIP LOCKED) q WHERE queue.name = q.name",
      fmt::arg("s", s));
}

std::string get_time(std::string_view s) {
  return fmt::format("SELECT round(date_part('epoch', {}.job_now()) * 1000)::bigint", s);
}

std::string deletion_batch(std::string_view s, std::string_view t) {
  // A walk over (name, id) in key order, so each batch covers at most $3 keys and no transaction
  // holds many row locks. Finished jobs past deletion_seconds, and queued jobs past keep_until.
  // deleted_retained: the deleted jobs that retained_count holds (completed/cancelled, finished
  // by the queue's retained_on; none while retained_on is NULL). retained: the completed/cancelled
  // jobs of the range finished by $4 that the batch leaves in place; the second read of the range
  // sees the snapshot from before the delete, so the removed ones are subtracted.
  const std::string range = fmt::format(
      "name = $1 AND (NULLIF($2, '') IS NULL OR id > NULLIF($2, '')::uuid) "
      "AND id <= COALESCE((SELECT id FROM edge), {max})",
      fmt::arg("max", kMaxUuid));
  const std::string before =
      fmt::format("{states} AND completed_on <= to_timestamp($4::float8 / 1000)",
                  fmt::arg("states", kRetainedStates));
  return fmt::format(
      "WITH edge AS (SELECT id FROM {s}.{t} WHERE name = $1 AND (NULLIF($2, '') IS NULL OR id > "
      "NULLIF($2, '')::uuid) "
      "ORDER BY id OFFSET $3 - 1 LIMIT 1), "
      "removed AS (DELETE FROM {s}.{t} WHERE {range} "
      "AND ((deletion_seconds > 0 AND completed_on + deletion_seconds * interval '1s' < "
      "{s}.job_now()) OR (state < 'active' AND keep_until < {s}.job_now())) "
      "RETURNING state, completed_on) "
      "SELECT (SELECT id FROM edge), (SELECT count(*) FROM removed)::int, "
      "(SELECT count(*) FROM removed WHERE {states} AND completed_on <= "
      "(SELECT retained_on FROM {s}.queue WHERE name = $1))::int, "
      "((SELECT count(*) FROM {s}.{t} WHERE {range} AND {before}) "
      "- (SELECT count(*) FROM removed WHERE {before}))::int",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("range", range), fmt::arg("before", before),
      fmt::arg("states", kRetainedStates));
}

std::string set_retained_count(std::string_view s, std::string_view t) {
  // total_count: the live counts as the last monitor pass left them, plus the retained jobs,
  // plus those that finished after $3 (which a monitor pass adds to retained_count later).
  return fmt::format(
      "UPDATE {s}.queue SET retained_count = $2, retained_on = to_timestamp($3::float8 / 1000), "
      "total_count = queued_count + active_count + failed_count + $2 + "
      "(SELECT count(*)::int FROM {s}.{t} j WHERE j.name = $1 "
      "AND j.completed_on > to_timestamp($3::float8 / 1000) AND j.completed_on <= {s}.job_now() "
      "AND {states}) "
      "WHERE name = $1",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("states", kRetainedStates));
}

std::string reduce_retained_count(std::string_view s) {
  // A queue never counted keeps retained_count NULL; total_count drops either way.
  return fmt::format(
      "UPDATE {}.queue SET retained_count = CASE WHEN retained_count IS NULL THEN NULL "
      "ELSE GREATEST(retained_count - $2, 0) END, total_count = GREATEST(total_count - $3, 0) "
      "WHERE name = $1",
      s);
}

std::string cleanup_dependencies(std::string_view s, std::string_view t, DependencySide side) {
  // Walks the side's keys like deletion_batch (over the primary key for `child`, over
  // job_dep_parent_idx for `parent`). The cursor and edge bounds on the job side only narrow the
  // probe; the anti-join itself is j.id = d.<side>_id.
  const std::string_view c = side == DependencySide::child ? "child" : "parent";
  return fmt::format(
      "WITH edge AS (SELECT {c}_id AS id FROM {s}.job_dependency WHERE {c}_name = $1 "
      "AND (NULLIF($2, '') IS NULL OR {c}_id > NULLIF($2, '')::uuid) "
      "ORDER BY {c}_id OFFSET $3 - 1 LIMIT 1), "
      "removed AS (DELETE FROM {s}.job_dependency d WHERE {c}_name = $1 "
      "AND (NULLIF($2, '') IS NULL OR {c}_id > NULLIF($2, '')::uuid) "
      "AND {c}_id <= COALESCE((SELECT id FROM edge), {max}) "
      "AND NOT EXISTS (SELECT 1 FROM {s}.{t} j WHERE j.name = $1 "
      "AND (NULLIF($2, '') IS NULL OR j.id > NULLIF($2, '')::uuid) "
      "AND j.id <= COALESCE((SELECT id FROM edge), {max}) AND j.id = d.{c}_id) "
      "RETURNING 1) "
      "SELECT (SELECT id FROM edge), (SELECT count(*) FROM removed)::int",
      fmt::arg("s", s), fmt::arg("t", t), fmt::arg("c", c), fmt::arg("max", kMaxUuid));
}

std::string queue_depth(std::string_view s, std::string_view t) {
  return fmt::format("SELECT count(*) FROM {}.{} WHERE name = $1 AND state < 'active'", s, t);
}

std::string get_job_by_id(std::string_view s, std::string_view t) {
  return fmt::format("SELECT to_jsonb(j) FROM {}.{} j WHERE name = $1 AND id = $2::uuid", s, t);
}

}  // namespace yw::queue::sql
