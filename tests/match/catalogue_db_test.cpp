// The catalogue in a real PostgreSQL (label db): the worker-owned schema and its migration,
// workers following each other's writes through the change log, deletion, and fingerprint_audio
// / match_fingerprint run by the real executor, with the catalogue row committed by the job's
// completion (a retried attempt adds nothing; a lost claim adds nothing). The audio is real
// music from a Debian package (scripts/lib/deps.sh), re-encoded with ffmpeg.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "match/synthetic.hpp"
#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/queue/client.hpp"
#include "yw/queue/pool.hpp"
#include "yw/worker/catalogue.hpp"
#include "yw/worker/executor.hpp"

namespace yw::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

const char* const kSong = "/usr/share/hyperrogue/music/hr3-caves.ogg";
const char* const kOther = "/usr/share/hyperrogue/music/hr3-desert.ogg";

template <typename Pred>
bool eventually(Pred pred, milliseconds timeout = milliseconds(60'000)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return pred();
}

class CatalogueDb : public ::testing::Test {
 protected:
  void SetUp() override {
    YW_REQUIRE_DATABASE();
    schema_ = std::make_unique<test::PgBossSchema>();
    cat_schema_ = "cat_" + schema_->name();
  }
  void TearDown() override {
    executor_.reset();
    client_.reset();
    pool_.reset();
    if (schema_) schema_->exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", cat_schema_));
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  long count(const std::string& sql) {
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<long>();
  }
  std::unique_ptr<Catalogue> open() {
    return std::make_unique<Catalogue>(schema_->url(), cat_schema_, schema_->name(), true);
  }
  void start_executor(HandlerRegistry& registry) {
    dir_ = test::make_temp_dir("yw-catalogue");
    config_.database_url = parse_database_url(schema_->url());
    config_.pgboss_schema = schema_->name();
    config_.catalogue_schema = cat_schema_;
    config_.input_roots = {dir_};
    config_.output_uri = "file://" + dir_ + "/out";
    pool_ = std::make_unique<queue::ConnectionPool>(
        queue::PoolConfig{.url = schema_->url(), .max_size = 8});
    client_ = std::make_unique<queue::PgBossClient>(*pool_, schema_->name());
    ExecutorOptions opt;
    opt.queues = registry.queues();
    opt.concurrency = 2;
    opt.config = &config_;
    opt.poll_interval = milliseconds(100);
    executor_ = std::make_unique<Executor>(*client_, registry, opt);
    executor_->start();
  }
  // `src` re-encoded by ffmpeg with `args` into the input root (the first 100 s: enough for the
  // 120 s fingerprint's comparison and quicker).
  std::string encode(const std::string& src, const std::string& name,
                     const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-v", "error", "-y",
                                     "-i",     src,        "-t", "100"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(dir_ + "/" + name);
    const auto r = test::run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return "file://" + dir_ + "/" + name;
  }
  json finished(const std::string& queue, const std::string& id) {
    json job;
    EXPECT_TRUE(eventually([&] {
      job = client_->get_job(queue, id);
      return !job.is_null() && (job["state"] == "completed" || job["state"] == "failed");
    })) << job.dump();
    return job;
  }

  std::unique_ptr<test::PgBossSchema> schema_;
  std::string cat_schema_, dir_;
  WorkerConfig config_;
  std::unique_ptr<queue::ConnectionPool> pool_;
  std::unique_ptr<queue::PgBossClient> client_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(CatalogueDb, MigrationCreatesAWorkerOwnedSchemaOnceAndRefusesPgBossSchema) {
  auto a = open();
  auto b = open();  // a second worker starting: idempotent
  EXPECT_EQ(count(fmt::format("SELECT max(version) FROM {}.version", cat_schema_)),
            kCatalogueSchemaVersion);
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM {}.version", cat_schema_)), 1);
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM information_schema.tables WHERE "
                              "table_schema = '{}' AND table_name IN ('fingerprint', 'change')",
                              cat_schema_)),
            2);
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM information_schema.tables WHERE "
                              "table_schema = '{}' AND table_name = 'fingerprint'",
                              schema_->name())),
            0);
  EXPECT_THROW(Catalogue(schema_->url(), schema_->name(), schema_->name(), false), ConfigError);
  EXPECT_THROW(Catalogue(schema_->url(), "bad-name;", schema_->name(), false), ConfigError);
  schema_->exec(fmt::format("UPDATE {}.version SET version = 99", cat_schema_));
  EXPECT_THROW(open(), ConfigError);
}

// Catalogue::add sends a batch's items as one binary int4[] that each row slices: every row gets
// exactly its own items (lengths vary, values use all 32 bits), its duration and source job, and
// a record given twice keeps its last entry.
TEST_F(CatalogueDb, BatchAddStoresEachRowsOwnItemsAndTheLastOfARepeatedRecord) {
  auto a = open();
  test::SyntheticFingerprints gen(9);
  std::vector<CatalogueEntry> entries;
  for (int i = 0; i < 300; ++i)
    entries.push_back({"rec" + std::to_string(i), gen.song(1 + static_cast<std::size_t>(i) * 7),
                       10.0 + i, i % 2 ? "" : "00000000-0000-0000-0000-0000000000aa"});
  entries.push_back({"rec5", gen.song(400), 99.5, ""});
  a->add(entries);
  for (int i = 0; i < 300; ++i) {
    const auto& want = i == 5 ? entries.back() : entries[static_cast<std::size_t>(i)];
    const auto got = a->get(want.record_id);
    ASSERT_TRUE(got.has_value()) << want.record_id;
    ASSERT_EQ(got->items, want.items) << want.record_id;
    EXPECT_EQ(got->duration_seconds, want.duration_seconds) << want.record_id;
    EXPECT_EQ(got->source_job, want.source_job) << want.record_id;
  }
  a->add({});  // nothing to add: no statement fails
}

TEST_F(CatalogueDb, WorkersFollowEachOthersWritesAndDeletesWithinASecond) {
  auto a = open();
  auto b = open();
  test::SyntheticFingerprints gen(7);
  const auto song = gen.song(948);
  std::vector<CatalogueEntry> entries = {{"one", song, 120.0, ""},
                                         {"two", gen.song(948), 118.0, ""}};
  a->add(entries);
  const auto t0 = std::chrono::steady_clock::now();
  // b sees them on its next match (it syncs first), well within a second.
  auto m = b->match(gen.degrade(song, 0.03), 120.0, {}, &bit_errors_batch_cpu);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].record_id, "one");
  EXPECT_EQ(m[0].verdict, "duplicate");
  EXPECT_TRUE(b->index().contains("two"));
  const auto stored = b->get("one");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->items, song);
  // An update replaces, a delete removes, in every follower.
  a->add({{"one", gen.song(948), 120.0, ""}});
  EXPECT_TRUE(b->match(gen.degrade(song, 0.03), 120.0, {}, &bit_errors_batch_cpu).empty());
  EXPECT_TRUE(a->remove("two"));
  EXPECT_FALSE(a->remove("two"));
  b->sync();
  EXPECT_FALSE(b->index().contains("two"));
  EXPECT_FALSE(b->get("two").has_value());
  EXPECT_EQ(b->version(), 4);  // insert, insert, update, delete
  // A third worker starting now loads the current state.
  auto c = open();
  EXPECT_TRUE(c->index().contains("one"));
  EXPECT_FALSE(c->index().contains("two"));
}

TEST_F(CatalogueDb, CatalogueRowCommitsWithTheCompletionOnly) {
  auto cat = open();
  pool_ = std::make_unique<queue::ConnectionPool>(
      queue::PoolConfig{.url = schema_->url(), .max_size = 4});
  client_ = std::make_unique<queue::PgBossClient>(*pool_, schema_->name());
  client_->create_queue("q", json::object());
  const auto id = client_->send("q", {json{{"x", 1}}, json::object()});
  ASSERT_TRUE(id.has_value());
  const auto jobs = client_->fetch("q", 1);
  ASSERT_EQ(jobs.size(), 1u);
  test::SyntheticFingerprints gen(8);
  const auto st = catalogue_upsert_statement(cat_schema_, {"rec", gen.song(948), 120.0, *id});
  // A stale attempt (the claim was lost): nothing is written.
  EXPECT_FALSE(client_->complete_with_children("q", {*id, jobs[0].retry_count + 1, json{}}, {},
                                               nullptr, {st}));
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM {}.fingerprint", cat_schema_)), 0);
  EXPECT_TRUE(
      client_->complete_with_children("q", {*id, jobs[0].retry_count, json{}}, {}, nullptr, {st}));
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM {}.fingerprint WHERE source_job = '{}'",
                              cat_schema_, *id)),
            1);
}

TEST_F(CatalogueDb, FingerprintJobsMatchReEncodesAndRetriesAddNoSecondRow) {
  if (!fs::exists(kSong) || !fs::exists(kOther)) {
    if (std::getenv("CI") != nullptr) FAIL() << kSong << " missing (hyperrogue-music)";
    GTEST_SKIP() << kSong << " missing: apt-get install hyperrogue-music";
  }
  HandlerRegistry real;
  register_fingerprint_handlers(real);
  register_match_handlers(real);
  const HandlerFn fingerprint = *real.find("fingerprint_audio");
  HandlerRegistry registry;
  std::atomic<int> attempts{0};
  // The first attempt of every job computes everything (and asks for its catalogue row), then
  // fails: the retry must be the only one that adds the row.
  registry.add("fingerprint_audio", [&](const json& data, JobContext& ctx) {
    json out = fingerprint(data, ctx);
    if (ctx.retry_count == 0 && data.value("fail_first", false)) {
      ++attempts;
      YW_THROW("first attempt fails after fingerprinting");
    }
    return out;
  });
  registry.add("match_fingerprint", *real.find("match_fingerprint"));
  start_executor(registry);
  const auto original = encode(kSong, "original.flac", {});
  const auto mp3 = encode(kSong, "copy.mp3", {"-b:a", "128k"});
  const auto other = encode(kOther, "other.ogg", {"-c:a", "libvorbis"});
  const json retry = {{"retryLimit", 2}, {"retryDelay", 0}};

  const auto a = client_->send(
      "fingerprint_audio",
      {json{{"audio", original}, {"record_id", "song-a"}, {"fail_first", true}}, retry});
  ASSERT_TRUE(a.has_value());
  json job = finished("fingerprint_audio", *a);
  ASSERT_EQ(job["state"], "completed") << job.dump();
  EXPECT_EQ(attempts.load(), 1);
  EXPECT_EQ(job["output"]["matches"], json::array());
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM {}.fingerprint", cat_schema_)), 1);
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM {}.fingerprint WHERE record_id = 'song-a' "
                              "AND source_job = '{}'",
                              cat_schema_, *a)),
            1);

  // The MP3 re-upload matches song-a; an unrelated track matches nothing.
  const auto b =
      client_->send("fingerprint_audio", {json{{"audio", mp3}, {"record_id", 42}}, retry});
  job = finished("fingerprint_audio", *b);
  ASSERT_EQ(job["state"], "completed") << job.dump();
  const json& m = job["output"]["matches"];
  ASSERT_EQ(m.size(), 1u) << job.dump();
  EXPECT_EQ(m[0]["record_id"], "song-a");
  EXPECT_GE(m[0]["score"].get<double>(), 0.75);
  EXPECT_TRUE(m[0]["verdict"] == "duplicate" || m[0]["verdict"] == "same_recording");
  EXPECT_NEAR(m[0]["offset_seconds"].get<double>(), 0.0, 0.2);
  // The whole 58 s track overlaps.
  EXPECT_GT(m[0]["matched_seconds"].get<double>(),
            0.9 * job["output"]["duration_seconds"].get<double>());
  EXPECT_LT(m[0]["bit_error_rate"].get<double>(), 0.125);
  const auto c =
      client_->send("fingerprint_audio", {json{{"audio", other}, {"record_id", "c"}}, retry});
  job = finished("fingerprint_audio", *c);
  EXPECT_EQ(job["output"]["matches"], json::array()) << job.dump();
  EXPECT_EQ(count(fmt::format("SELECT count(*) FROM {}.fingerprint", cat_schema_)), 3);

  // match_fingerprint by record id (its own row excluded) and by fingerprint string.
  const auto d =
      client_->send("match_fingerprint", {json{{"record_id", "song-a"}}, json::object()});
  job = finished("match_fingerprint", *d);
  ASSERT_EQ(job["state"], "completed") << job.dump();
  ASSERT_EQ(job["output"]["matches"].size(), 1u) << job.dump();
  EXPECT_EQ(job["output"]["matches"][0]["record_id"], "42");
  const auto items = decompress_fingerprint(fingerprint_file(dir_ + "/other.ogg").fingerprint);
  const auto e = client_->send(
      "match_fingerprint",
      {json{{"fingerprint", compress_fingerprint(items)}, {"min_score", 0.9}}, json::object()});
  job = finished("match_fingerprint", *e);
  ASSERT_EQ(job["output"]["matches"].size(), 1u) << job.dump();
  EXPECT_EQ(job["output"]["matches"][0]["record_id"], "c");
  EXPECT_EQ(job["output"]["matches"][0]["verdict"], "duplicate");
  // Bad data fails terminally with the field named; the worker keeps going.
  const auto f = client_->send("match_fingerprint", {json{{"record_id", "nope"}}, json::object()});
  job = finished("match_fingerprint", *f);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_NE(job["output"]["message"].get<std::string>().find("not in the catalogue"),
            std::string::npos);
  const auto g = client_->send("match_fingerprint", {json{{"items", "x"}}, json::object()});
  job = finished("match_fingerprint", *g);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_NE(job["output"]["message"].get<std::string>().find("items"), std::string::npos);
}

}  // namespace
}  // namespace yw::worker

namespace yw::worker {
namespace {

TEST_F(CatalogueDb, MatchCommandPrintsTheCatalogueMatchesOfLocalFiles) {
  if (!fs::exists(kSong)) {
    if (std::getenv("CI") != nullptr) FAIL() << kSong << " missing (hyperrogue-music)";
    GTEST_SKIP() << kSong << " missing: apt-get install hyperrogue-music";
  }
  dir_ = test::make_temp_dir("yw-match-cli");
  auto cat = open();
  const auto fp = fingerprint_file(kSong, 120.0);
  cat->add({{"the-song", fp.items, fp.duration_seconds, ""}});
  encode(kSong, "upload.mp3", {"-b:a", "96k"});
  const auto r =
      test::run_process({test::worker_binary(), "match", dir_ + "/upload.mp3", "--against",
                         schema_->url(), "--catalogue-schema", cat_schema_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto line = nlohmann::json::parse(r.out);
  ASSERT_EQ(line["matches"].size(), 1u) << r.out;
  EXPECT_EQ(line["matches"][0]["record_id"], "the-song");
  EXPECT_EQ(line["matches"][0]["verdict"], "duplicate");
  // A bad file is named on stderr and fails the run; text output otherwise.
  const auto bad = test::run_process({test::worker_binary(), "match", dir_ + "/missing.wav",
                                      dir_ + "/upload.mp3", "--against", schema_->url(),
                                      "--catalogue-schema", cat_schema_});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("missing.wav"), std::string::npos) << bad.err;
  EXPECT_NE(bad.out.find("duplicate"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("the-song"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace yw::worker
