#include "support/pg_fixture.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "support/process.hpp"

namespace yw::test {

std::string test_database_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  return url == nullptr ? std::string() : std::string(url);
}

std::string pgboss_cli() {
  if (const char* p = std::getenv("PGBOSS_CLI"); p != nullptr && *p != '\0') return p;
  return std::string(YW_SOURCE_DIR) + "/scripts/pgboss/node_modules/.bin/pg-boss";
}

PgBossSchema::PgBossSchema(bool install) : url_(test_database_url()) {
  static std::atomic<int> counter{0};
  name_ = fmt::format("yw_test_{}_{}", getpid(), counter++);
  {
    pqxx::connection conn(url_);
    pqxx::nontransaction tx(conn);
    tx.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", name_));
  }
  if (install) {
    const auto r =
        run_process({pgboss_cli(), "migrate", "--connection-string", url_, "--schema", name_});
    if (r.exit_code != 0) {
      throw std::runtime_error(
          fmt::format("pg-boss migrate failed ({}): {}{}", r.exit_code, r.out, r.err));
    }
  }
}

PgBossSchema::~PgBossSchema() {
  try {
    pqxx::connection conn(url_);
    pqxx::nontransaction tx(conn);
    tx.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", name_));
  } catch (...) {
    // Best effort: a dropped server leaves only a uniquely named schema behind.
  }
}

void PgBossSchema::exec(const std::string& sql) const {
  pqxx::connection conn(url_);
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

}  // namespace yw::test
