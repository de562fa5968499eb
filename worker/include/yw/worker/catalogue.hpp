#pragma once
// The fingerprint catalogue: PostgreSQL holds it, every worker follows it in memory.
//
// Schema (owned by the worker, YW_CATALOGUE_SCHEMA, default `yw_catalogue`; never pg-boss's):
//   fingerprint(record_id text PK, items int4[] (fpcalc -signed items, as AcoustID stores them),
//               duration_seconds, source_job uuid, created_on, updated_on)
//   change(seq bigserial PK, record_id, op 'I'|'U'|'D', changed_on): appended by a trigger on
//               every insert, update and delete of fingerprint. The trigger takes a
//               transaction-level advisory lock first, so seq order is commit order and a
//               follower that has read up to seq N can never later see a smaller seq commit.
//   version(version int): the schema version migrate_catalogue brought it to.
// A NOTIFY on channel `<schema>_change` accompanies each committing change.
//
// Followers: Catalogue::sync() reads `change` after its cursor (one indexed query) and applies
// the rows to its FingerprintIndex; match() syncs first, so a worker's answer reflects every
// change committed before the query started (read-your-writes across workers, no coordinator).
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/connection>

#include "yw/queue/job.hpp"
#include "yw/worker/config.hpp"
#include "yw/worker/fingerprint_index.hpp"

namespace yw::worker {

inline constexpr int kCatalogueSchemaVersion = 1;

struct CatalogueEntry {
  std::string record_id;
  std::vector<std::uint32_t> items;
  double duration_seconds = 0.0;
  std::string source_job;  // uuid of the job that produced it; empty for direct inserts
};

// Creates or migrates the catalogue schema (idempotent; serialised by an advisory lock, so
// workers starting together are safe). Throws ConfigError when `schema` is not a plain
// identifier or is pg-boss's schema.
void migrate_catalogue(pqxx::connection& c, const std::string& schema,
                       const std::string& pgboss_schema);

// The statement (for JobContext::statements) that upserts `entry` into the catalogue in the
// completing transaction. Keyed by record_id: a retried or repeated job replaces the row instead
// of adding a second one.
queue::TxStatement catalogue_upsert_statement(const std::string& schema,
                                              const CatalogueEntry& entry);
// The same for a batch, in one statement (Catalogue::add; a record given twice keeps the last).
queue::TxStatement catalogue_upsert_statement(const std::string& schema,
                                              const std::vector<CatalogueEntry>& entries);

// Items <-> the int4[] text form PostgreSQL uses ({-1,2,...}; signed as fpcalc -signed).
std::string items_to_pg_array(std::span<const std::uint32_t> items);
std::vector<std::uint32_t> items_from_pg_array(std::string_view text);

class Catalogue {
 public:
  Catalogue(std::string url, std::string schema, std::string pgboss_schema, bool clip_index);
  ~Catalogue();
  Catalogue(const Catalogue&) = delete;
  Catalogue& operator=(const Catalogue&) = delete;

  const std::string& schema() const { return schema_; }
  // Applies every change committed since the last sync; returns the new cursor (change seq).
  std::int64_t sync();
  std::int64_t version() const;

  // Syncs, then matches against the whole catalogue.
  std::vector<FingerprintMatch> match(std::span<const std::uint32_t> query, double duration_seconds,
                                      const MatchOptions& options, const BitErrorFn& bit_errors);
  // A stored record (from PostgreSQL, so also records kept out of the index); nullopt if absent.
  std::optional<CatalogueEntry> get(const std::string& record_id);
  // Direct writes (CLI, tests, benches); the worker's jobs write through their completion.
  void add(const std::vector<CatalogueEntry>& entries);
  bool remove(const std::string& record_id);

  FingerprintIndex& index() { return *index_; }

  // The process-wide catalogue of `config` (created, migrated and loaded on first use); null
  // when the configuration has no database or YW_CATALOGUE_SCHEMA=off.
  static Catalogue* shared(const WorkerConfig& config);

 private:
  std::int64_t sync_locked();
  std::int64_t sync_on(pqxx::connection& c);
  std::optional<CatalogueEntry> get_on(pqxx::connection& c, const std::string& record_id);
  // The connection, reopened after a loss; with_conn drops it when a call finds it broken.
  pqxx::connection& conn();
  template <typename Fn>
  auto with_conn(Fn&& fn);
  std::string url_, schema_;
  std::unique_ptr<pqxx::connection> conn_;
  std::mutex m_;  // the connection and the cursor
  std::int64_t cursor_ = 0;
  std::unique_ptr<FingerprintIndex> index_;
};

// JSON for the job outputs: {record_id, score, offset_seconds, matched_seconds, bit_error_rate,
// verdict, mode, votes}.
nlohmann::json matches_json(const std::vector<FingerprintMatch>& matches);
// Parses match options from job data (`thresholds`/`min_score`, `max_offset_seconds`,
// `max_duration_diff_seconds`, `limit`, `mode`); throws InputError naming a bad field.
MatchOptions match_options_from_json(const nlohmann::json& data, std::string_view field_prefix);

}  // namespace yw::worker
