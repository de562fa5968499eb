#pragma once
// The pg-boss schema version this client speaks, and the start-up check against the database.
// pg-boss owns the schema: we never create or migrate it (pgboss-protocol.md §1, §14.7).
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

namespace yw::queue {

// pg-boss 12.38.0 writes schema version 46 (package.json "pgboss.schema").
inline constexpr int kSupportedPgBossSchema = 46;
inline constexpr std::string_view kPgBossRelease = "12.38.0";

// Throws yw::ConfigError unless `name` is a plain PostgreSQL identifier pg-boss accepts
// (letters, digits, underscores; not starting with a digit; at most 63 bytes).
void validate_schema_name(std::string_view name);

// The number stored in <schema>.version, or nullopt when the schema or its version table is
// absent. Throws pqxx errors for connection problems.
std::optional<int> read_schema_version(pqxx::connection& conn, std::string_view schema);

// Refuses to run against a missing schema or a version other than kSupportedPgBossSchema, with a
// yw::ConfigError whose message names the fix (`pg-boss migrate …`, scripts/dev.sh). Returns the
// version found.
int check_schema_version(pqxx::connection& conn, std::string_view schema);

}  // namespace yw::queue
