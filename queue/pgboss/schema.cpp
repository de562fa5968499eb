#include "yw/queue/schema.hpp"

#include "pgboss/sql.hpp"
#include "yw/common/error.hpp"

namespace yw::queue {

void validate_schema_name(std::string_view name) {
  const auto ok_char = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
  };
  bool ok = !name.empty() && name.size() <= 63;
  for (std::size_t i = 0; ok && i < name.size(); ++i)
    ok = ok_char(name[i], i == 0);
  if (!ok) {
    throw ConfigError(fmt::format(
        "PGBOSS_SCHEMA: '{}' is not a valid schema name (letters, digits and '_', not starting "
        "with a digit, at most 63 characters)",
        name));
  }
}

std::optional<int> read_schema_version(pqxx::connection& conn, std::string_view schema) {
  pqxx::nontransaction tx(conn);
  if (!tx.exec1(sql::version_table_exists(schema))[0].as<bool>()) return std::nullopt;
  const pqxx::result r = tx.exec(sql::get_version(schema));
  if (r.empty() || r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<int>();
}

int check_schema_version(pqxx::connection& conn, std::string_view schema) {
  const auto version = read_schema_version(conn, schema);
  if (!version) {
    throw ConfigError(fmt::format(
        "pg-boss schema '{}' is not installed in this database. Install it with pg-boss's own "
        "CLI: `npx --prefix scripts/pgboss pg-boss migrate --connection-string \"$DATABASE_URL\" "
        "--schema {}` (pg-boss {}), or run scripts/dev.sh for a local setup",
        schema, schema, kPgBossRelease));
  }
  if (*version != kSupportedPgBossSchema) {
    throw ConfigError(fmt::format(
        "pg-boss schema '{}' is at version {}, but this worker supports version {} (pg-boss {}). "
        "{}",
        schema, *version, kSupportedPgBossSchema, kPgBossRelease,
        *version < kSupportedPgBossSchema
            ? "Upgrade it with `npx --prefix scripts/pgboss pg-boss migrate --connection-string "
              "\"$DATABASE_URL\"`."
            : "The database was migrated by a newer pg-boss: deploy a worker built for it."));
  }
  return *version;
}

}  // namespace yw::queue
