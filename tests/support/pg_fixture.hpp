#pragma once
// PostgreSQL for tests (style.md habit 11): TEST_DATABASE_URL names a server (scripts/test.sh
// starts one); each test gets its own pg-boss schema, installed by the pinned pg-boss CLI, so
// tests run in parallel on one database.
#include <gtest/gtest.h>

#include <string>

namespace yw::test {

// TEST_DATABASE_URL, or "" when unset.
std::string test_database_url();
// The pinned pg-boss CLI (scripts/pgboss/node_modules/.bin/pg-boss, or $PGBOSS_CLI).
std::string pgboss_cli();

// A unique schema `yw_test_<pid>_<n>`. With install, pg-boss's CLI migrates it to the pinned
// version. Dropped (CASCADE) on destruction.
class PgBossSchema {
 public:
  explicit PgBossSchema(bool install = true);
  ~PgBossSchema();
  PgBossSchema(const PgBossSchema&) = delete;
  PgBossSchema& operator=(const PgBossSchema&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  // Runs one SQL statement on the test database (autocommit).
  void exec(const std::string& sql) const;

 private:
  std::string name_;
  std::string url_;
};

}  // namespace yw::test

// Skips when no database is configured, except under CI (CI=true), where that is a failure:
// scripts/test.sh always provides one, so a skip there would hide lost coverage.
#define YW_REQUIRE_DATABASE()                                                           \
  do {                                                                                  \
    if (::yw::test::test_database_url().empty()) {                                      \
      if (std::getenv("CI") != nullptr) FAIL() << "TEST_DATABASE_URL is not set";       \
      GTEST_SKIP() << "TEST_DATABASE_URL is not set (scripts/test.sh starts a server)"; \
    }                                                                                   \
  } while (0)
