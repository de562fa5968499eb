#pragma once
// Every SQL statement the client sends, one function each, parameterised by the schema name
// (already validated by validate_schema_name) and, for job statements, by the physical table the
// queue row names (validated by validate_table_name). Each names the pg-boss 12.38 plans.ts
// function whose semantics it follows; the statements are written from pgboss-protocol.md, not
// copied. Clock: <schema>.job_now() (schema 42+), so pg-boss's test clock applies to us too.
#include <string>
#include <string_view>

namespace yw::queue::sql {

// plans.ts getVersion: the schema version row.
std::string get_version(std::string_view schema);
// to_regclass('<schema>.version'): NULL when the schema is not installed.
std::string version_table_exists(std::string_view schema);

// plans.ts getQueues (the columns a worker needs). $1 text[] of names.
std::string get_queues(std::string_view schema);

// plans.ts createQueue: create_queue($1 name, $2 options jsonb) after the `create-queue`
// advisory lock. Run inside a transaction with lock_statement("create-queue") first.
std::string create_queue(std::string_view schema);
// plans.ts advisoryLock: pg_advisory_xact_lock on the key derived from database, schema and
// suffix (protocol §11).
std::string advisory_lock(std::string_view schema, std::string_view suffix);
// plans.ts notifyChannelSql: the LISTEN/NOTIFY channel of the schema as a one-row SELECT.
std::string notify_channel(std::string_view schema);

// plans.ts insertJobs: $1 json array of pg-boss job objects (camelCase option keys), $2 queue
// name. Returns one row per inserted job (id); with `notify`, pg_notify fires once when any
// inserted row is runnable now.
std::string insert_jobs(std::string_view schema, std::string_view table, bool notify);

// plans.ts fetchNextJob, with the claim matched by id = ANY(ARRAY(SELECT …)) (protocol §14.2).
// $1 queue name, $2 limit. `policy` selects the singleton/stately/key_strict_fifo rules; `batch`
// > 1 enables the one-per-key ranking. `group_param` > 0 adds group concurrency (§4.4): $N int
// the default limit and $N+1 jsonb {tier: limit} ('{}' without tiers), N = group_param; the
// limits are parameters, so one prepared statement serves every limit. Rows come back in update
// order, with priority and created_on (epoch) last so the caller can order them.
std::string fetch_next_job(std::string_view schema, std::string_view table, std::string_view policy,
                           bool batch, int group_param = 0);

// complete_jobs and fetch_next_job in one statement (one commit instead of two): $1 queue,
// $2 limit, $3 uuid[] ids to complete, $4 text[] their 'id:retry' pairs, $5 jsonb outputs;
// `grouped`: $6 default group limit, $7 jsonb tier limits.
// Rows: kind 'c' (claimed; the fetch columns follow) or 'd' (completed; only id).
std::string complete_and_fetch(std::string_view schema, std::string_view table,
                               std::string_view policy, bool batch, bool grouped = false);

// The claim of a job run inside its own transaction (PgBossClient::claim_and_run), for the
// standard and short policies only, which put no rule on active jobs: the candidates of
// fetch_next_job, row-locked (FOR UPDATE SKIP LOCKED) but left queued. $1 queue, $2 limit.
// Rows in claim order, with the columns of fetch_next_job; retry_count is the value the claim
// gives it (4.5), so it names the attempt as a fetched job's does.
std::string lock_next_jobs(std::string_view schema, std::string_view table);
// The claim and the completion of locked rows in one UPDATE: what fetch_next_job then
// complete_jobs would leave (state, started_on and heartbeat_on at the transaction's start, the
// claim's retry_count, completed_on when the statement runs, each job's own output). $1 queue,
// $2 uuid[] ids, $3 jsonb object id -> output. Returns the completed ids.
std::string complete_locked(std::string_view schema, std::string_view table);
// The claim alone of locked rows (state active, as fetch_next_job writes it), so that
// fail_jobs, fenced on the claim's retry_count, can fail them in the same transaction. $1 queue,
// $2 uuid[] ids. Returns the ids.
std::string start_locked(std::string_view schema, std::string_view table);

// plans.ts completeJobsWithOutputs, fenced: $1 queue, $2 uuid[] ids, $3 text[] 'id:retry' pairs,
// $4 jsonb object id -> output. Returns the completed ids.
std::string complete_jobs(std::string_view schema, std::string_view table);

// plans.ts failJobsByIdWithOutputs (terminal = false) / deadLetterJobsByIdWithOutputs
// (terminal = true), fenced like complete_jobs. Returns the ids it failed.
std::string fail_jobs(std::string_view schema, std::string_view table, bool terminal);

// plans.ts touchJobs, fenced: $1 queue, $2 uuid[] ids, $3 text[] pairs. Returns touched ids.
std::string touch_jobs(std::string_view schema, std::string_view table);

// plans.ts failJobsByTimeout / failJobsByHeartbeat (one batch of expireJobs): $1 text[] queue
// names, $2 batch limit. Returns one row: how many jobs the batch picked.
std::string fail_jobs_by_timeout(std::string_view schema, std::string_view table);
std::string fail_jobs_by_heartbeat(std::string_view schema, std::string_view table);

// plans.ts trySetQueueDeletionTime: claims `maintain_on` on the due queues of $1 text[] whose
// last claim is at least $2 seconds old; returns the claimed names and the claim's stamp (UTC ISO
// text, microseconds), one stamp for every queue the statement claimed.
std::string try_set_queue_deletion_time(std::string_view schema);
// plans.ts releaseQueueDeletionTime: hands back the claim on the queues of $1 text[] that a pass
// claimed with stamp $2 but did not finish, so the next pass takes them up again instead of a
// whole interval later. A queue claimed again since (another stamp) keeps that claim.
std::string release_queue_deletion_time(std::string_view schema);
// plans.ts getTime: job_now() as whole epoch milliseconds (bigint).
std::string get_time(std::string_view schema);
// plans.ts deletion with retainedBefore (one key-ordered batch under <table>deletion):
// $1 queue, $2 cursor uuid or '' for the start, $3 batch size, $4 retainedBefore (epoch ms).
// One row: the next cursor (NULL when the queue is done), deleted, deletedRetained (the deleted
// completed/cancelled jobs that finished by the queue's retained_on) and retained (the
// completed/cancelled jobs of the batch's range that finished by $4 and were kept).
std::string deletion_batch(std::string_view schema, std::string_view table);
// plans.ts setRetainedCount, after a walk that covered the whole queue: $1 queue, $2 the walk's
// retained total, $3 retainedBefore (epoch ms) as the new retained_on; total_count recomputed
// from the cached live counts, $2, and the completed/cancelled jobs that finished after $3.
std::string set_retained_count(std::string_view schema, std::string_view table);
// plans.ts reduceRetainedCount, after a walk cut short: $1 queue, $2 deletedRetained off
// retained_count (a NULL count stays NULL), $3 deleted off total_count; neither below 0.
std::string reduce_retained_count(std::string_view schema);

// Which column of job_dependency a cleanup walk follows.
enum class DependencySide { child, parent };
// plans.ts cleanupDependencies (one batch under <table>cleanupDependencies): deletes the
// job_dependency rows with <side>_name = $1 among the next $3 <side>_id keys after cursor $2
// ('' for the start) whose job on that side no longer exists in `table`. One row: the next
// cursor (NULL when done) and how many rows were deleted.
std::string cleanup_dependencies(std::string_view schema, std::string_view table,
                                 DependencySide side);

// Jobs waiting (created or retry) in queue $1, for the yw_queue_depth gauge. pg-boss's own
// queued_count is kept by its monitor, which may not run when no Node process supervises.
std::string queue_depth(std::string_view schema, std::string_view table);

// plans.ts getJobById (test and CLI helper): $1 queue, $2 id.
std::string get_job_by_id(std::string_view schema, std::string_view table);

}  // namespace yw::queue::sql
