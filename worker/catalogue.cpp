#include "yw/worker/catalogue.hpp"

#include <charconv>
#include <map>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/queue/schema.hpp"
#include "yw/worker/job_args.hpp"

namespace yw::worker {
namespace {

// Plain lower-case identifiers only: the schema name is spliced into DDL.
void check_schema(const std::string& schema, const std::string& pgboss_schema) {
  bool ok = !schema.empty() && schema.size() <= 50 && (schema[0] < '0' || schema[0] > '9');
  for (const char ch : schema)
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_');
  if (!ok) {
    throw ConfigError(
        fmt::format("YW_CATALOGUE_SCHEMA: '{}' is not a plain identifier (a-z, 0-9, _)", schema));
  }
  if (schema == pgboss_schema) {
    throw ConfigError(fmt::format(
        "YW_CATALOGUE_SCHEMA: '{}' is pg-boss's schema; the catalogue needs a schema of its own",
        schema));
  }
}

std::string migration_v1(const std::string& s) {
  return fmt::format(R"SQL(
CREATE TABLE {0}.fingerprint (
  record_id text PRIMARY KEY,
  items int4[] NOT NULL,
  duration_seconds double precision NOT NULL,
  source_job uuid,
  created_on timestamptz NOT NULL DEFAULT now(),
  updated_on timestamptz NOT NULL DEFAULT now()
);
-- Items are incompressible: skip pglz's attempt on every row (~25 % faster inserts).
ALTER TABLE {0}.fingerprint ALTER items SET STORAGE EXTERNAL;
CREATE TABLE {0}.change (
  seq bigserial PRIMARY KEY,
  record_id text NOT NULL,
  op "char" NOT NULL,
  changed_on timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION {0}.log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Held to commit: seq is taken in commit order, so a follower's cursor never skips a row.
  PERFORM pg_advisory_xact_lock(hashtext('{0}.change'));
  IF TG_OP = 'DELETE' THEN
    INSERT INTO {0}.change (record_id, op) VALUES (OLD.record_id, 'D');
  ELSE
    INSERT INTO {0}.change (record_id, op) VALUES (NEW.record_id, left(TG_OP, 1));
  END IF;
  PERFORM pg_notify('{0}_change', '');
  RETURN NULL;
END $$;
CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON {0}.fingerprint
  FOR EACH ROW EXECUTE FUNCTION {0}.log_change();
)SQL",
                     s);
}

}  // namespace

void migrate_catalogue(pqxx::connection& c, const std::string& schema,
                       const std::string& pgboss_schema) {
  check_schema(schema, pgboss_schema);
  pqxx::work tx(c);
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", schema + ".migrate");
  tx.exec(
      fmt::format("CREATE SCHEMA IF NOT EXISTS {0};"
                  "CREATE TABLE IF NOT EXISTS {0}.version (version int NOT NULL)",
                  schema));
  const auto r = tx.exec(fmt::format("SELECT max(version) FROM {}.version", schema));
  const int have = r[0][0].is_null() ? 0 : r[0][0].as<int>();
  if (have > kCatalogueSchemaVersion) {
    throw ConfigError(fmt::format(
        "catalogue schema {} is at version {}, newer than this worker's {}: upgrade the worker",
        schema, have, kCatalogueSchemaVersion));
  }
  if (have < 1) tx.exec(migration_v1(schema));
  // Later versions: `if (have < 2) tx.exec(migration_v2(schema));`
  if (have < kCatalogueSchemaVersion) {
    tx.exec(fmt::format("DELETE FROM {0}.version; INSERT INTO {0}.version VALUES ({1})", schema,
                        kCatalogueSchemaVersion));
  }
  tx.commit();
}

std::string items_to_pg_array(std::span<const std::uint32_t> items) {
  std::string s;
  s.reserve(items.size() * 11 + 2);
  s.push_back('{');
  char buf[16];
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) s.push_back(',');
    const auto [end, ec] =
        std::to_chars(buf, buf + sizeof buf, static_cast<std::int32_t>(items[i]));
    s.append(buf, end);
  }
  s.push_back('}');
  return s;
}

std::vector<std::uint32_t> items_from_pg_array(std::string_view text) {
  YW_CHECK(text.size() >= 2 && text.front() == '{' && text.back() == '}',
           "catalogue: items are not an int4[] literal");
  std::vector<std::uint32_t> items;
  items.reserve(text.size() / 10);
  const char* p = text.data() + 1;
  const char* end = text.data() + text.size() - 1;
  while (p < end) {
    std::int32_t v = 0;
    const auto [next, ec] = std::from_chars(p, end, v);
    YW_CHECK(ec == std::errc(), "catalogue: bad int4[] element");
    items.push_back(static_cast<std::uint32_t>(v));
    p = next;
    if (p < end && *p == ',') ++p;
  }
  return items;
}

queue::TxStatement catalogue_upsert_statement(const std::string& schema,
                                              const std::vector<CatalogueEntry>& entries) {
  // One statement for the whole batch; a record given twice keeps its last entry (ON CONFLICT
  // cannot touch one row twice in a statement).
  std::map<std::string, std::size_t> last;
  for (std::size_t i = 0; i < entries.size(); ++i)
    last[entries[i].record_id] = i;
  auto rows = nlohmann::json::array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (last[e.record_id] != i) continue;
    rows.push_back(
        {{"record_id", e.record_id},
         {"items", items_to_pg_array(e.items)},
         {"duration_seconds", e.duration_seconds},
         {"source_job", e.source_job.empty() ? nlohmann::json() : nlohmann::json(e.source_job)}});
  }
  return {fmt::format(
              "INSERT INTO {0}.fingerprint (record_id, items, duration_seconds, source_job) "
              "SELECT j->>'record_id', (j->>'items')::int4[], (j->>'duration_seconds')::float8, "
              "(j->>'source_job')::uuid FROM jsonb_array_elements($1::jsonb) AS arg(j) "
              "ON CONFLICT (record_id) DO UPDATE SET items = EXCLUDED.items, "
              "duration_seconds = EXCLUDED.duration_seconds, source_job = EXCLUDED.source_job, "
              "updated_on = now()",
              schema),
          rows.dump()};
}

queue::TxStatement catalogue_upsert_statement(const std::string& schema,
                                              const CatalogueEntry& entry) {
  return catalogue_upsert_statement(schema, std::vector<CatalogueEntry>{entry});
}

Catalogue::Catalogue(std::string url, std::string schema, std::string pgboss_schema,
                     bool clip_index)
    : url_(std::move(url)),
      schema_(std::move(schema)),
      index_(std::make_unique<FingerprintIndex>(clip_index)) {
  conn_ = std::make_unique<pqxx::connection>(url_);
  migrate_catalogue(*conn_, schema_, pgboss_schema);
  sync();
}

Catalogue::~Catalogue() = default;

std::int64_t Catalogue::sync() {
  std::lock_guard lock(m_);
  return sync_locked();
}

pqxx::connection& Catalogue::conn() {
  if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(url_);
  return *conn_;
}

template <typename Fn>
auto Catalogue::with_conn(Fn&& fn) {
  try {
    return fn(conn());
  } catch (const pqxx::broken_connection&) {
    conn_.reset();  // reconnect on the next call (the database was restarted or unreachable)
    throw;
  }
}

std::int64_t Catalogue::sync_locked() {
  return with_conn([&](pqxx::connection& c) { return sync_on(c); });
}

std::int64_t Catalogue::sync_on(pqxx::connection& c) {
  constexpr int kChunk = 10'000;
  while (true) {
    pqxx::read_transaction tx(c);
    // The latest change per record in this chunk wins; the row's current items come with it.
    const auto rows = tx.exec_params(
        fmt::format("SELECT c.seq, c.record_id, f.items, f.duration_seconds FROM "
                    "(SELECT seq, record_id FROM {0}.change WHERE seq > $1 ORDER BY seq LIMIT $2) "
                    "AS c LEFT JOIN {0}.fingerprint f USING (record_id) ORDER BY c.seq",
                    schema_),
        cursor_, kChunk);
    tx.commit();
    for (const auto& row : rows) {
      cursor_ = row[0].as<std::int64_t>();
      const std::string id = row[1].as<std::string>();
      if (row[2].is_null()) {
        index_->remove(id);
      } else {
        index_->upsert(id, items_from_pg_array(row[2].c_str()), row[3].as<double>());
      }
    }
    if (rows.size() < static_cast<std::size_t>(kChunk)) break;
  }
  return cursor_;
}

std::int64_t Catalogue::version() const {
  return cursor_;
}

std::vector<FingerprintMatch> Catalogue::match(std::span<const std::uint32_t> query,
                                               double duration_seconds, const MatchOptions& options,
                                               const BitErrorFn& bit_errors) {
  sync();
  return index_->match(query, duration_seconds, options, bit_errors);
}

std::optional<CatalogueEntry> Catalogue::get(const std::string& record_id) {
  std::lock_guard lock(m_);
  return with_conn([&](pqxx::connection& c) { return get_on(c, record_id); });
}

std::optional<CatalogueEntry> Catalogue::get_on(pqxx::connection& c, const std::string& record_id) {
  pqxx::read_transaction tx(c);
  const auto rows = tx.exec_params(
      fmt::format("SELECT items, duration_seconds, coalesce(source_job::text, '') FROM "
                  "{}.fingerprint WHERE record_id = $1",
                  schema_),
      record_id);
  if (rows.empty()) return std::nullopt;
  CatalogueEntry e;
  e.record_id = record_id;
  e.items = items_from_pg_array(rows[0][0].c_str());
  e.duration_seconds = rows[0][1].as<double>();
  e.source_job = rows[0][2].as<std::string>();
  return e;
}

namespace {

void put_be32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

}  // namespace

void Catalogue::add(const std::vector<CatalogueEntry>& entries) {
  // The same rows as catalogue_upsert_statement, but the items of the whole batch travel as one
  // binary int4[] parameter (array_recv: no text to print or parse) and each row takes its slice
  // of it; the small fields stay in jsonb. Parsing the items' int4[] text was most of the cost:
  // 10,000 rows of 950 items took ~2 s as jsonb text and ~1.3 s through text COPY, against
  // ~0.2 s for the INSERT itself (psql, this machine).
  std::map<std::string, std::size_t> last;
  for (std::size_t i = 0; i < entries.size(); ++i)
    last[entries[i].record_id] = i;
  auto rows = nlohmann::json::array();
  std::size_t total = 0;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (last[entries[i].record_id] == i) total += entries[i].items.size();
  YW_CHECK(total < 0x7FFFFFFFu, "catalogue: {} items in one batch", total);
  // array_send's layout: ndim, has-nulls, element type (int4 = 23), then length and lower bound,
  // then (length, value) per element, all big-endian.
  std::string flat;
  flat.reserve(20 + 8 * total);
  put_be32(flat, total ? 1 : 0);  // no items at all: the empty array, which has no dimension
  put_be32(flat, 0);
  put_be32(flat, 23);
  if (total) {
    put_be32(flat, static_cast<std::uint32_t>(total));
    put_be32(flat, 1);
  }
  std::size_t at = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (last[e.record_id] != i) continue;
    for (const std::uint32_t item : e.items) {
      put_be32(flat, 4);
      put_be32(flat, item);
    }
    rows.push_back(
        {{"record_id", e.record_id},
         {"o", at},
         {"n", e.items.size()},
         {"duration_seconds", e.duration_seconds},
         {"source_job", e.source_job.empty() ? nlohmann::json() : nlohmann::json(e.source_job)}});
    at += e.items.size();
  }
  const std::string sql = fmt::format(
      "INSERT INTO {0}.fingerprint (record_id, items, duration_seconds, source_job) "
      "SELECT j->>'record_id', "
      "($2::int4[])[(j->>'o')::int4 + 1 : (j->>'o')::int4 + (j->>'n')::int4], "
      "(j->>'duration_seconds')::float8, (j->>'source_job')::uuid "
      "FROM jsonb_array_elements($1::jsonb) AS arg(j) "
      "ON CONFLICT (record_id) DO UPDATE SET items = EXCLUDED.items, "
      "duration_seconds = EXCLUDED.duration_seconds, source_job = EXCLUDED.source_job, "
      "updated_on = now()",
      schema_);
  const std::string json = rows.dump();
  std::lock_guard lock(m_);
  with_conn([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(sql, json, pqxx::binarystring(flat.data(), flat.size()));
    tx.commit();
    return 0;
  });
}

bool Catalogue::remove(const std::string& record_id) {
  std::lock_guard lock(m_);
  return with_conn([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto r = tx.exec_params(
        fmt::format("DELETE FROM {}.fingerprint WHERE record_id = $1", schema_), record_id);
    tx.commit();
    return r.affected_rows() > 0;
  });
}

Catalogue* Catalogue::shared(const WorkerConfig& config) {
  if (!config.database_url || config.catalogue_schema.empty()) return nullptr;
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Catalogue>> catalogues;
  std::lock_guard lock(mutex);
  auto& slot = catalogues[config.database_url->original + "\n" + config.catalogue_schema];
  if (!slot) {
    slot = std::make_unique<Catalogue>(config.database_url->original, config.catalogue_schema,
                                       config.pgboss_schema, config.catalogue_clip_index);
    const auto s = slot->index().stats();
    log(LogLevel::info, "catalogue", "catalogue loaded",
        {field("schema", config.catalogue_schema), field("records", s.records),
         field("version", slot->version()), field("bytes", s.bytes)});
  }
  return slot.get();
}

nlohmann::json matches_json(const std::vector<FingerprintMatch>& matches) {
  auto out = nlohmann::json::array();
  for (const auto& m : matches) {
    out.push_back({{"record_id", m.record_id},
                   {"score", m.score},
                   {"offset_seconds", m.offset_seconds},
                   {"matched_seconds", m.matched_seconds},
                   {"bit_error_rate", m.bit_error_rate},
                   {"verdict", m.verdict},
                   {"mode", m.mode},
                   {"votes", m.votes}});
  }
  return out;
}

MatchOptions match_options_from_json(const nlohmann::json& data, std::string_view prefix) {
  MatchOptions o;
  if (data.is_null()) return o;
  if (!data.is_object())
    throw InputError(fmt::format("{}: expected an object, got {}", prefix, data.type_name()));
  auto name = [&](std::string_view f) { return fmt::format("{}{}", prefix, f); };
  auto number = [&](std::string_view f, double lo, double hi) -> std::optional<double> {
    const auto it = data.find(std::string(f));
    if (it == data.end() || it->is_null()) return std::nullopt;
    if (!it->is_number())
      throw InputError(fmt::format("{}: expected a number, got {}", name(f), it->type_name()));
    const double v = it->get<double>();
    if (!(v >= lo && v <= hi))
      throw InputError(
          fmt::format("{}: expected a number from {} to {}, got {}", name(f), lo, hi, v));
    return v;
  };
  if (const auto v = number("min_score", 0.0, 1.0)) o.min_score = *v;
  if (const auto v = number("max_offset_seconds", 0.0, 8'000.0))
    o.max_offset_items = static_cast<int>(std::lround(*v / kItemSeconds));
  if (const auto it = data.find("max_duration_diff_seconds"); it != data.end() && it->is_null()) {
    o.max_duration_diff_s = -1.0;  // explicit null: no duration filter
  } else if (const auto v = number("max_duration_diff_seconds", 0.0, 86'400.0)) {
    o.max_duration_diff_s = *v;
  }
  if (const auto v = number("limit", 1.0, 100.0)) o.limit = static_cast<int>(*v);
  if (const auto it = data.find("mode"); it != data.end() && !it->is_null()) {
    const std::string m = it->is_string() ? it->get<std::string>() : "";
    if (m == "full") {
      o.mode = MatchMode::full;
    } else if (m == "clip") {
      o.mode = MatchMode::clip;
    } else if (m == "both") {
      o.mode = MatchMode::both;
    } else {
      throw InputError(fmt::format("{}: expected \"full\", \"clip\" or \"both\", got {}",
                                   name("mode"), it->dump()));
    }
  }
  return o;
}

}  // namespace yw::worker
