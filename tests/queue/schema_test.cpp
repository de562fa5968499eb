#include "yw/queue/schema.hpp"

#include <gtest/gtest.h>

#include "support/pg_fixture.hpp"
#include "yw/common/error.hpp"

namespace yw::queue {
namespace {

std::string check_error(const std::string& url, const std::string& schema) {
  pqxx::connection conn(url);
  try {
    check_schema_version(conn, schema);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(SchemaTest, AcceptsTheSchemaThePinnedCliInstalls) {
  YW_REQUIRE_DATABASE();
  test::PgBossSchema schema;
  pqxx::connection conn(schema.url());
  EXPECT_EQ(read_schema_version(conn, schema.name()), kSupportedPgBossSchema);
  EXPECT_EQ(check_schema_version(conn, schema.name()), kSupportedPgBossSchema);
}

TEST(SchemaTest, MissingSchemaNamesTheFix) {
  YW_REQUIRE_DATABASE();
  test::PgBossSchema schema(/*install=*/false);
  const std::string err = check_error(schema.url(), schema.name());
  EXPECT_NE(err.find("not installed"), std::string::npos) << err;
  EXPECT_NE(err.find("pg-boss migrate"), std::string::npos) << err;
  EXPECT_NE(err.find("scripts/dev.sh"), std::string::npos) << err;
}

TEST(SchemaTest, WrongVersionNamesBothNumbers) {
  YW_REQUIRE_DATABASE();
  test::PgBossSchema schema;
  schema.exec("UPDATE " + schema.name() + ".version SET version = 45");
  std::string err = check_error(schema.url(), schema.name());
  EXPECT_NE(err.find("version 45"), std::string::npos) << err;
  EXPECT_NE(err.find("supports version 46"), std::string::npos) << err;
  EXPECT_NE(err.find("migrate"), std::string::npos) << "an older schema can be upgraded: " << err;
  schema.exec("UPDATE " + schema.name() + ".version SET version = 47");
  err = check_error(schema.url(), schema.name());
  EXPECT_NE(err.find("version 47"), std::string::npos) << err;
  EXPECT_NE(err.find("newer pg-boss"), std::string::npos) << err;
}

TEST(SchemaTest, SchemaNamesAreValidated) {
  EXPECT_NO_THROW(validate_schema_name("pgboss"));
  EXPECT_NO_THROW(validate_schema_name("_pgboss_2"));
  for (const char* bad : {"", "1abc", "pg-boss", "pgboss; DROP TABLE x", "a b"})
    EXPECT_THROW(validate_schema_name(bad), ConfigError) << bad;
}

}  // namespace
}  // namespace yw::queue
