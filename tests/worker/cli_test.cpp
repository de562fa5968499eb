// The CLI as a user meets it: the real binary, its --help, its exit codes.
#include <gtest/gtest.h>

#include "support/process.hpp"

namespace yw::test {
namespace {

// Runs the worker in an empty directory (no .env) with no worker variables set.
ProcessResult worker(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  static const std::string dir = make_temp_dir("yw-cli");
  args.insert(args.begin(), worker_binary());
  ProcessOptions opts;
  opts.cwd = dir;
  opts.env = std::move(env);
  opts.unset_env = {"DATABASE_URL", "WORKER_CONCURRENCY", "YW_DEVICE", "NODE_ENV", "PGBOSS_SCHEMA"};
  return run_process(args, opts);
}

TEST(CliTest, HelpListsEverySubcommand) {
  const auto r = worker({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* sub : {"run", "send", "fingerprint", "metadata", "separate"})
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub << "\n" << r.out;
}

TEST(CliTest, RunHelpListsEveryFlagWithItsDefault) {
  const auto r = worker({"run", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* flag :
       {"--database-url", "--schema", "--concurrency", "--device", "--batch-max",
        "--batch-delay-ms", "--model", "--input-roots", "--output-uri", "--shutdown-timeout",
        "--metrics-addr", "--queues", "--supabase-url", "--storage-bucket", "--log-level"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_NE(r.out.find("TEXT=pgboss"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TEXT=auto"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TEXT=10 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TEXT=127.0.0.1:9464"), std::string::npos) << r.out;
}

TEST(CliTest, HelpShowsTheEffectiveDefaultButNeverASecret) {
  const auto r = worker({"run", "--help"}, {{"WORKER_CONCURRENCY", "12"},
                                            {"DATABASE_URL", "postgresql://u:hunter2@h/db"}});
  EXPECT_NE(r.out.find("TEXT=12 "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos);
  EXPECT_NE(r.out.find("(set)"), std::string::npos);
}

TEST(CliTest, EverySubcommandHasHelp) {
  for (const char* sub : {"send", "fingerprint", "metadata", "separate"}) {
    const auto r = worker({sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << sub;
  }
}

TEST(CliTest, BadUsageExitsTwo) {
  EXPECT_EQ(worker({}).exit_code, 2);
  EXPECT_EQ(worker({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(worker({"run", "--no-such-flag"}).exit_code, 2);
}

TEST(CliTest, InvalidConfigurationExitsTwoNamingTheVariable) {
  auto r = worker({"run"}, {{"WORKER_CONCURRENCY", "lots"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("WORKER_CONCURRENCY"), std::string::npos) << r.err;
  r = worker({"run", "--device", "tpu"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("YW_DEVICE"), std::string::npos) << r.err;
  r = worker({"run"}, {{"DATABASE_URL", "postgresql://u:hunter2@h:0/db"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("DATABASE_URL"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

TEST(CliTest, RunWithoutDatabaseUrlExitsTwo) {
  const auto r = worker({"run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("DATABASE_URL: required"), std::string::npos) << r.err;
}

TEST(CliTest, DotenvIsReadFromTheWorkingDirectory) {
  const std::string dir = make_temp_dir("yw-dotenv");
  {
    std::FILE* f = std::fopen((dir + "/.env").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("WORKER_CONCURRENCY=oops\n", f);
    std::fclose(f);
  }
  ProcessOptions opts;
  opts.cwd = dir;
  opts.unset_env = {"WORKER_CONCURRENCY"};
  auto r = run_process({worker_binary(), "run"}, opts);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("WORKER_CONCURRENCY"), std::string::npos) << r.err;
  opts.env = {{"WORKER_CONCURRENCY", "3"}};  // the real environment wins over .env
  r = run_process({worker_binary(), "run"}, opts);
  EXPECT_NE(r.err.find("DATABASE_URL: required"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace yw::test
