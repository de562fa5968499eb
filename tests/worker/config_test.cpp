#include "yw/worker/config.hpp"

#include <gtest/gtest.h>

#include "yw/common/error.hpp"

namespace yw::worker {
namespace {

std::string config_error(const std::map<std::string, std::string>& env) {
  try {
    WorkerConfig::from_settings(Settings::from({}, env));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, DefaultsMatchTheDesign) {
  const auto c = WorkerConfig::from_settings(Settings::from({}, {}));
  EXPECT_FALSE(c.database_url.has_value());
  EXPECT_EQ(c.pgboss_schema, "pgboss");
  EXPECT_EQ(c.concurrency, 4);
  EXPECT_TRUE(c.device.is_auto);
  EXPECT_DOUBLE_EQ(c.shutdown_timeout_s, 10.0);
  EXPECT_EQ(c.metrics_addr, "127.0.0.1:9464");
  EXPECT_EQ(c.output_uri, "file://./data/outputs");
  EXPECT_FALSE(c.production);
}

TEST(ConfigTest, EnvironmentBeatsDotenvAndFlagBeatsBoth) {
  auto s = Settings::from({{"WORKER_CONCURRENCY", "3"}, {"PGBOSS_SCHEMA", "fromfile"}},
                          {{"WORKER_CONCURRENCY", "7"}});
  auto c = WorkerConfig::from_settings(s);
  EXPECT_EQ(c.concurrency, 7) << "real environment wins over .env";
  EXPECT_EQ(c.pgboss_schema, "fromfile") << ".env fills what the environment leaves";
  EXPECT_EQ(s.source("WORKER_CONCURRENCY"), Settings::Source::environment);
  s.set("WORKER_CONCURRENCY", "9", Settings::Source::flag);
  c = WorkerConfig::from_settings(s);
  EXPECT_EQ(c.concurrency, 9) << "a flag wins over everything";
}

TEST(ConfigTest, UnknownVariablesAreIgnored) {
  const auto s = Settings::from({{"SOMETHING_ELSE", "x"}}, {{"PATH", "/bin"}});
  EXPECT_FALSE(s.is_set("SOMETHING_ELSE"));
  EXPECT_NO_THROW(WorkerConfig::from_settings(s));
}

TEST(ConfigTest, InvalidValuesNameTheVariable) {
  EXPECT_NE(config_error({{"WORKER_CONCURRENCY", "many"}}).find("WORKER_CONCURRENCY"),
            std::string::npos);
  EXPECT_NE(config_error({{"WORKER_CONCURRENCY", "0"}}).find("WORKER_CONCURRENCY"),
            std::string::npos);
  EXPECT_NE(config_error({{"WORKER_CONCURRENCY", "4x"}}).find("WORKER_CONCURRENCY"),
            std::string::npos);
  EXPECT_NE(config_error({{"YW_DEVICE", "gpu"}}).find("YW_DEVICE"), std::string::npos);
  EXPECT_NE(config_error({{"YW_DEVICE", "cuda:-1"}}).find("YW_DEVICE"), std::string::npos);
  EXPECT_NE(config_error({{"DATABASE_URL", "mysql://u@h/db"}}).find("DATABASE_URL"),
            std::string::npos);
  EXPECT_NE(config_error({{"DATABASE_URL", "not a url"}}).find("DATABASE_URL"), std::string::npos);
  EXPECT_NE(config_error({{"DATABASE_URL", "postgresql://u:p@host:99999/db"}}).find("port"),
            std::string::npos);
  EXPECT_NE(config_error({{"YW_SHUTDOWN_TIMEOUT_S", "-1"}}).find("YW_SHUTDOWN_TIMEOUT_S"),
            std::string::npos);
  EXPECT_NE(config_error({{"YW_BATCH_MAX", ""}}).find("YW_BATCH_MAX"), std::string::npos);
  EXPECT_NE(config_error({{"YW_METRICS_ADDR", "9464"}}).find("YW_METRICS_ADDR"), std::string::npos);
  EXPECT_NE(config_error({{"YW_QUEUE_CONCURRENCY", "separate_stems"}}).find("YW_QUEUE_CONCURRENCY"),
            std::string::npos);
  EXPECT_NE(config_error({{"YW_LOG_LEVEL", "loud"}}).find("YW_LOG_LEVEL"), std::string::npos);
  EXPECT_NE(config_error({{"YW_OUTPUT_URI", "/tmp/x"}}).find("YW_OUTPUT_URI"), std::string::npos);
  EXPECT_EQ(config_error({{"WORKER_CONCURRENCY", " 8 "}}), "") << "surrounding blanks are fine";
}

TEST(ConfigTest, ErrorsNeverShowThePassword) {
  const std::string err = config_error({{"DATABASE_URL", "postgresql://me:hunter2@db:99999/x"}});
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.find("hunter2"), std::string::npos) << err;
}

TEST(ConfigTest, PerQueueConcurrencyOverrides) {
  const auto c = WorkerConfig::from_settings(
      Settings::from({}, {{"YW_QUEUE_CONCURRENCY", "separate_stems=1, fingerprint_audio=16"}}));
  EXPECT_EQ(c.concurrency_for("separate_stems"), 1);
  EXPECT_EQ(c.concurrency_for("fingerprint_audio"), 16);
  EXPECT_EQ(c.concurrency_for("extract_metadata"), 4);
}

TEST(ConfigTest, PerQueueGroupConcurrency) {
  const auto c = WorkerConfig::from_settings(Settings::from(
      {}, {{"YW_GROUP_CONCURRENCY", "separate_stems=1;pro:2; free : 1 , fingerprint_audio=4"}}));
  ASSERT_EQ(c.group_concurrency.size(), 2u);
  EXPECT_EQ(c.group_concurrency.at("separate_stems"),
            (queue::GroupConcurrency{1, {{"pro", 2}, {"free", 1}}}));
  EXPECT_EQ(c.group_concurrency.at("fingerprint_audio"), (queue::GroupConcurrency{4, {}}));
  EXPECT_TRUE(WorkerConfig::from_settings(Settings::from({}, {})).group_concurrency.empty());
  for (const std::string bad :
       {"separate_stems", "separate_stems=", "separate_stems=0", "separate_stems=x",
        "separate_stems=2;pro", "separate_stems=2;:3", "separate_stems=2;pro:0",
        "separate_stems=2;pro:2;pro:3", "separate_stems=;pro:2", "bad name=1",
        "separate_stems=1,separate_stems=2", "separate_stems=1025"}) {
    EXPECT_NE(config_error({{"YW_GROUP_CONCURRENCY", bad}}).find("YW_GROUP_CONCURRENCY"),
              std::string::npos)
        << bad;
  }
}

TEST(DatabaseUrlTest, ParsesAndMasks) {
  const auto u = parse_database_url(
      "postgresql://postgres:s3cret@db.example.supabase.co:6543/postgres?sslmode=require");
  EXPECT_EQ(u.user, "postgres");
  EXPECT_EQ(u.password, "s3cret");
  EXPECT_EQ(u.host, "db.example.supabase.co");
  EXPECT_EQ(u.port, "6543");
  EXPECT_EQ(u.database, "postgres");
  EXPECT_EQ(u.masked(),
            "postgresql://postgres:****@db.example.supabase.co:6543/postgres?sslmode=require");
  EXPECT_EQ(parse_database_url("postgres://u@[::1]:5432/db").host, "[::1]");
  EXPECT_EQ(parse_database_url("postgres://localhost/db").masked(), "postgres://localhost/db");
}

TEST(MaskTest, MasksUriAndConninfoPasswords) {
  EXPECT_EQ(mask_secrets("postgresql://u:pw@h/db"), "postgresql://u:****@h/db");
  EXPECT_EQ(mask_secrets("host=h password=pw dbname=x"), "host=h password=**** dbname=x");
  EXPECT_EQ(mask_secrets("postgres://h/db?user=u&password=pw&x=1"),
            "postgres://h/db?user=u&password=****&x=1");
  EXPECT_EQ(mask_secrets("nothing secret here"), "nothing secret here");
}

TEST(DotenvTest, ParsesTheUsualForms) {
  const auto m = parse_dotenv(
      "# comment\n"
      "DATABASE_URL=postgresql://a:b@h/d\n"
      "export NODE_ENV=production\n"
      "  SUPABASE_URL = https://x.supabase.co  # trailing comment\n"
      "YW_MODEL=\"/models/with space.pt\"\n"
      "YW_QUEUES='a,b'\n"
      "EMPTY=\n");
  EXPECT_EQ(m.at("DATABASE_URL"), "postgresql://a:b@h/d");
  EXPECT_EQ(m.at("NODE_ENV"), "production");
  EXPECT_EQ(m.at("SUPABASE_URL"), "https://x.supabase.co");
  EXPECT_EQ(m.at("YW_MODEL"), "/models/with space.pt");
  EXPECT_EQ(m.at("YW_QUEUES"), "a,b");
  EXPECT_EQ(m.at("EMPTY"), "");
}

TEST(DotenvTest, MalformedLinesAreReportedWithTheirNumber) {
  try {
    parse_dotenv("OK=1\nthis is not a setting\n", "/app/.env");
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/app/.env:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_dotenv("A=\"unterminated\n"), ConfigError);
}

}  // namespace
}  // namespace yw::worker
