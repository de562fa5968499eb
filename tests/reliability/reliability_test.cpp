// What an operator trusts: bad input ends in the right state with a message a user can act on
// while the worker keeps running; a full disk fails a job retryably and leaves no partial file;
// SIGTERM in the middle of work exits 0 with nothing left `active` and nothing run twice.
#include <signal.h>
#include <sys/mount.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "support/pg_fixture.hpp"
#include "support/process.hpp"
#include "yw/queue/client.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ReliabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    YW_REQUIRE_DATABASE();
    schema_ = std::make_unique<PgBossSchema>();
    dir_ = make_temp_dir("yw-rel");
    fs::create_directories(fs::path(dir_) / "in");
    fs::create_directories(fs::path(dir_) / "out");
    pool_ = std::make_unique<queue::ConnectionPool>(
        queue::PoolConfig{.url = schema_->url(), .max_size = 2});
    client_ = std::make_unique<queue::PgBossClient>(*pool_, schema_->name());
  }
  void TearDown() override {
    worker_.reset();
    client_.reset();
    pool_.reset();
    schema_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ProcessOptions worker_env(std::map<std::string, std::string> extra = {}) const {
    ProcessOptions opts;
    opts.cwd = dir_;
    opts.env = {{"DATABASE_URL", schema_->url()},
                {"PGBOSS_SCHEMA", schema_->name()},
                {"YW_DEVICE", "cpu"},
                {"YW_METRICS_ADDR", "off"},
                {"YW_INPUT_ROOTS", dir_ + "/in"},
                {"YW_OUTPUT_URI", "file://" + dir_ + "/out"},
                {"YW_LOG_LEVEL", "warn"}};
    for (auto& [k, v] : extra)
      opts.env[k] = v;
    opts.unset_env = {"NODE_ENV", "YW_MODEL"};
    return opts;
  }
  void start_worker(std::map<std::string, std::string> extra = {}) {
    auto opts = worker_env(std::move(extra));
    opts.env["YW_LOG_LEVEL"] = "info";
    worker_ =
        std::make_unique<BackgroundProcess>(std::vector<std::string>{worker_binary(), "run"}, opts);
    ASSERT_TRUE(worker_->wait_for_err("started", seconds(30))) << worker_->err_so_far();
  }
  std::string send(const std::string& queue, const json& data) {
    const auto id = client_->send(queue, {data, json::object()});
    EXPECT_TRUE(id.has_value());
    return id.value_or("");
  }
  json job(const std::string& id) {
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    const auto r = tx.exec_params(
        fmt::format("SELECT json_build_object('state', state, 'retry_count', retry_count, "
                    "'output', output, 'name', name)::text FROM {}.job WHERE id = $1::uuid",
                    schema_->name()),
        id);
    return r.empty() ? json() : json::parse(r[0][0].c_str());
  }
  int count(const std::string& where) {
    pqxx::connection c(schema_->url());
    pqxx::nontransaction tx(c);
    return tx.exec1(fmt::format("SELECT count(*) FROM {}.job WHERE {}", schema_->name(), where))[0]
        .as<int>();
  }
  template <typename Pred>
  bool eventually(Pred pred, milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return pred();
  }
  std::string in(const std::string& name) const { return dir_ + "/in/" + name; }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(in(name), std::ios::binary) << bytes;
  }
  void sox(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"sox"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run_process(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::unique_ptr<PgBossSchema> schema_;
  std::string dir_;
  std::unique_ptr<queue::ConnectionPool> pool_;
  std::unique_ptr<queue::PgBossClient> client_;
  std::unique_ptr<BackgroundProcess> worker_;
};

TEST_F(ReliabilityTest, ACorpusOfBadInputsEndsInTheRightStatesAndTheWorkerKeepsRunning) {
  // Corrupt and truncated audio of each format, wrong types, bad paths and URIs.
  sox({"-n", "-r", "22050", "-c", "1", "-b", "16", in("good.wav"), "synth", "5", "sine", "440"});
  sox({"-n", "-r", "22050", "-c", "1", in("good.flac"), "synth", "5", "sine", "440"});
  const auto head = [&](const std::string& src, std::size_t n) {
    std::ifstream f(in(src), std::ios::binary);
    std::string s(n, '\0');
    f.read(s.data(), static_cast<std::streamsize>(n));
    return s;
  };
  write("empty.wav", "");
  write("truncated.wav", head("good.wav", 30));
  write("truncated.flac", head("good.flac", 60));
  write("page.mp3", "<!DOCTYPE html><html><body>404 Not Found</body></html>");
  write("page.wav", "<html><head><title>Error</title></head></html>");
  write("text.ogg", "just some text, not Ogg at all\n");
  write("zeros.mp3", std::string(4096, '\0'));
  write("garbage.m4a", std::string("\x00\x00\x00\x18"
                                   "ftypM4A ",
                                   12) +
                           std::string(500, 'x'));
  {
    // A RIFF header claiming 2^32-1 bytes of 65535 channels.
    std::string w = head("good.wav", 44);
    w[22] = '\xff';
    w[23] = '\xff';
    for (int i = 40; i < 44; ++i)
      w[static_cast<std::size_t>(i)] = '\xff';
    write("absurd.wav", w);
  }
  fs::create_directories(in("folder.wav"));
  fs::create_symlink("/etc/hostname", in("escape.wav"));
  const std::string u = "file://" + dir_ + "/in/";
  struct Case {
    std::string queue;
    json data;
    std::string expect;  // a part of the failure message
  };
  const std::vector<Case> cases = {
      {"fingerprint_audio", {{"audio", u + "empty.wav"}}, "empty.wav"},
      {"fingerprint_audio", {{"audio", u + "truncated.wav"}}, "truncated.wav"},
      {"fingerprint_audio", {{"audio", u + "truncated.flac"}}, "truncated.flac"},
      {"fingerprint_audio", {{"audio", u + "page.mp3"}}, "page.mp3"},
      {"fingerprint_audio", {{"audio", u + "page.wav"}}, "page.wav"},
      {"fingerprint_audio", {{"audio", u + "text.ogg"}}, "text.ogg"},
      {"fingerprint_audio", {{"audio", u + "zeros.mp3"}}, "zeros.mp3"},
      {"fingerprint_audio", {{"audio", u + "garbage.m4a"}}, "garbage.m4a"},
      {"fingerprint_audio", {{"audio", u + "absurd.wav"}}, "absurd.wav"},
      {"fingerprint_audio", {{"audio", u + "folder.wav"}}, "folder.wav"},
      {"fingerprint_audio", {{"audio", u + "missing.wav"}}, "missing.wav"},
      {"fingerprint_audio", {{"audio", u + "escape.wav"}}, "escape.wav"},
      {"fingerprint_audio", {{"audio", u + "../../../etc/passwd"}}, "audio"},
      {"fingerprint_audio", {{"audio", "file:///etc/passwd"}}, "audio"},
      {"fingerprint_audio",
       {{"audio", "ftp://example.org/a.wav"}},
       "audio: unsupported URI scheme"},
      {"fingerprint_audio", {{"audio", 12}}, "audio: expected a URI string"},
      {"fingerprint_audio", json::object(), "audio: required"},
      {"fingerprint_audio", json::array({1, 2}), "data: expected a JSON object"},
      {"fingerprint_audio", {{"audio", u + "good.wav"}, {"length_seconds", -5}}, "length_seconds"},
      {"fingerprint_audio", {{"audio", u + "good.wav"}, {"raw", "yes"}}, "raw"},
      {"fingerprint_audio",
       {{"audio", u + "good.wav"}, {"record_id", json::object()}},
       "record_id"},
      {"separate_stems", {{"audio", u + "truncated.flac"}}, "truncated.flac"},
      {"separate_stems", {{"audio", u + "good.wav"}, {"format", "mp3"}}, "format"},
      {"separate_stems", {{"audio", u + "good.wav"}, {"model", "htdemucs"}}, "model"},
      {"extract_metadata", {{"audio", u + "garbage.m4a"}}, "garbage.m4a"},
      {"extract_metadata", {{"audio", u + "page.wav"}}, "page.wav"},
      {"extract_metadata", {{"record_id", 1}}, "audio: required"},
      {"process_new_record", {{"record_type", "song"}}, "record_id: required"},
      {"process_new_record", {{"record_id", 1}, {"audio", true}}, "audio: expected a URI string"},
      {"process_new_record", {{"record_id", 1}, {"tasks", {"karaoke"}}}, "tasks: unknown task"},
      {"process_new_record",
       {{"record_id", 1}, {"audio", "gopher://x/y"}},
       "unsupported URI scheme"},
  };
  ASSERT_GE(cases.size(), 30u);
  start_worker();
  std::vector<std::string> ids;
  for (const auto& c : cases)
    ids.push_back(send(c.queue, c.data));
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(fmt::format("case {}: {} {}", i, cases[i].queue, cases[i].data.dump()));
    ASSERT_TRUE(eventually([&] { return job(ids[i])["state"] == "failed"; }, seconds(60)))
        << job(ids[i]).dump() << "\n"
        << worker_->err_so_far();
    const json j = job(ids[i]);
    EXPECT_EQ(j["retry_count"], 0) << "bad input is not retried: " << j.dump();
    const std::string message = j["output"].value("message", "");
    EXPECT_NE(message.find(cases[i].expect), std::string::npos) << message;
    EXPECT_EQ(j["output"].value("name", ""), "InputError") << j.dump();
  }
  // An unknown queue is refused at the door with a message naming it.
  const auto r = run_process({worker_binary(), "send", "no_such_queue", "{}"}, worker_env());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no_such_queue"), std::string::npos) << r.err;
  // The worker is alive and still does good work.
  const std::string good = send("fingerprint_audio", {{"audio", u + "good.wav"}});
  ASSERT_TRUE(eventually([&] { return job(good)["state"] == "completed"; }, seconds(60)))
      << job(good).dump() << worker_->err_so_far();
  EXPECT_TRUE(job(good)["output"]["fingerprint"].get<std::string>().starts_with("AQA"));
  EXPECT_EQ(count("state = 'active'"), 0);
  worker_->signal(SIGTERM);
  EXPECT_EQ(worker_->wait(seconds(30)).exit_code, 0);
}

TEST_F(ReliabilityTest, AFullDiskFailsTheJobRetryablyAndLeavesNoPartialFile) {
  const std::string full = dir_ + "/full";
  fs::create_directories(full);
  // 48 KiB cannot hold the stems of 5 s of stereo audio.
  if (::mount("tmpfs", full.c_str(), "tmpfs", 0, "size=48k") != 0) {
    if (std::getenv("CI") != nullptr) FAIL() << "mounting a tmpfs failed: " << std::strerror(errno);
    GTEST_SKIP() << "mounting a small tmpfs needs root (" << std::strerror(errno) << ")";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{full};
  sox({"-n", "-r", "44100", "-c", "2", "-b", "16", in("song.wav"), "synth", "5", "pluck", "220",
       "synth", "5", "pinknoise", "mix", "vol", "0.5"});
  start_worker({{"YW_OUTPUT_URI", "file://" + full}});
  const std::string id =
      send("separate_stems", {{"audio", "file://" + in("song.wav")}, {"record_id", "r1"}});
  // Retryable: pg-boss schedules a retry (state retry, or failed once retries are used up).
  ASSERT_TRUE(eventually([&] { return job(id)["state"] == "retry"; }, seconds(60)))
      << job(id).dump() << worker_->err_so_far();
  const std::string message = job(id)["output"].value("message", "");
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  worker_->signal(SIGTERM);
  EXPECT_EQ(worker_->wait(seconds(30)).exit_code, 0);
  // Nothing half-written: no stem and no temporary file anywhere under the full disk.
  std::vector<std::string> left;
  for (const auto& e : fs::recursive_directory_iterator(full))
    if (e.is_regular_file()) left.push_back(e.path().string());
  EXPECT_TRUE(left.empty()) << "left behind: " << left.front();
}

TEST_F(ReliabilityTest, SigtermMidWorkExitsZeroAndNothingStaysActiveOrRunsTwice) {
  for (int i = 0; i < 8; ++i) {
    sox({"-n", "-r", "44100", "-c", "2", "-b", "16", in(fmt::format("s{}.wav", i)), "synth", "40",
         "pluck", std::to_string(110 + 30 * i), "synth", "40", "pinknoise", "mix", "vol", "0.5"});
  }
  // A short shutdown timeout: some jobs finish, the rest are failed back as retryable.
  start_worker({{"WORKER_CONCURRENCY", "2"}, {"YW_SHUTDOWN_TIMEOUT_S", "0.5"}});
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i)
    ids.push_back(send("separate_stems",
                       {{"audio", "file://" + in(fmt::format("s{}.wav", i))}, {"record_id", i}}));
  ASSERT_TRUE(eventually([&] { return count("name = 'separate_stems' AND state = 'active'") > 0; },
                         seconds(30)));
  worker_->signal(SIGTERM);
  const auto r = worker_->wait(seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count("state = 'active'"), 0) << "nothing stays active after a clean stop";
  const int retried = count("name = 'separate_stems' AND state = 'retry'");
  EXPECT_GT(retried, 0) << "jobs still running at the deadline were failed back";

  // Another worker takes them over at once; in the end each job completed exactly once.
  start_worker({{"WORKER_CONCURRENCY", "4"}});
  ASSERT_TRUE(eventually(
      [&] { return count("name = 'separate_stems' AND state = 'completed'") == 8; }, seconds(120)))
      << worker_->err_so_far();
  for (int i = 0; i < 8; ++i) {
    for (const char* stem : {"harmonic", "percussive"})
      EXPECT_TRUE(fs::exists(fmt::format("{}/out/{}/{}.flac", dir_, i, stem))) << i << stem;
  }
  EXPECT_EQ(count("name = 'separate_stems'"), 8) << "no duplicate job rows";
  worker_->signal(SIGTERM);
  EXPECT_EQ(worker_->wait(seconds(30)).exit_code, 0);
}

}  // namespace
}  // namespace yw::test

namespace yw::test {
namespace {

long rss_kib(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return -1;
}

TEST_F(ReliabilityTest, SoakOfTwentyThousandMixedJobsAcrossTwoWorkers) {
  sox({"-n", "-r", "22050", "-c", "2", "-b", "16", in("a.wav"), "synth", "3.5", "sine", "440",
       "sine", "660"});
  sox({"-n", "-r", "11025", "-c", "1", in("b.flac"), "synth", "3.5", "pinknoise", "vol", "0.3"});
  auto opts = worker_env({{"WORKER_CONCURRENCY", "4"}, {"YW_LOG_LEVEL", "warn"}});
  // Two workers on the same queues; the second starts once the first has created them.
  start_worker({{"WORKER_CONCURRENCY", "4"}});
  BackgroundProcess second({worker_binary(), "run"}, opts);
  const int total = 20'000;
  const std::string u = "file://" + dir_ + "/in/";
  std::map<std::string, std::vector<queue::SendJob>> batches;
  for (int i = 0; i < total; ++i) {
    switch (i % 4) {
      case 0:
        batches["fingerprint_audio"].push_back(
            {{{"audio", u + "a.wav"}, {"record_id", i}}, json::object()});
        break;
      case 1:
        batches["extract_metadata"].push_back(
            {{{"audio", u + "b.flac"}, {"record_id", i}}, json::object()});
        break;
      case 2:
        batches["fingerprint_audio"].push_back(
            {{{"audio", u + "b.flac"}, {"record_id", i}}, json::object()});
        break;
      default:  // a record without audio completes as skipped
        batches["process_new_record"].push_back({{{"record_id", i}}, json::object()});
    }
  }
  for (auto& [queue_name, jobs] : batches) {
    for (std::size_t at = 0; at < jobs.size(); at += 1000) {
      const std::vector<queue::SendJob> chunk(
          jobs.begin() + static_cast<long>(at),
          jobs.begin() + static_cast<long>(std::min(at + 1000, jobs.size())));
      client_->send_many(queue_name, chunk);
    }
  }
  const auto done = [&] { return count("state = 'completed' AND name NOT LIKE '%__dead'"); };
  ASSERT_TRUE(eventually([&] { return done() >= total / 5; }, seconds(180))) << done();
  const long warm1 = rss_kib(worker_->pid()), warm2 = rss_kib(second.pid());
  ASSERT_TRUE(eventually([&] { return done() == total; }, seconds(240)))
      << done() << " of " << total << "\n"
      << worker_->err_so_far();
  const long end1 = rss_kib(worker_->pid()), end2 = rss_kib(second.pid());
  std::printf(
      "soak: %d jobs; RSS after warm-up %ld / %ld KiB, at the end %ld / %ld KiB (%+.1f%% / "
      "%+.1f%%)\n",
      total, warm1, warm2, end1, end2, 100.0 * (end1 - warm1) / warm1,
      100.0 * (end2 - warm2) / warm2);
  EXPECT_LT(end1, warm1 * 11 / 10) << "worker 1 grew more than 10 % after warm-up";
  EXPECT_LT(end2, warm2 * 11 / 10) << "worker 2 grew more than 10 % after warm-up";
  // Nothing lost, nothing run twice: every job completed on its first attempt, and no row extra.
  EXPECT_EQ(count("name NOT LIKE '%__dead'"), total);
  EXPECT_EQ(count("retry_count > 0"), 0);
  EXPECT_EQ(count("state <> 'completed'"), 0);
  worker_->signal(SIGTERM);
  second.signal(SIGTERM);
  EXPECT_EQ(worker_->wait(seconds(30)).exit_code, 0);
  EXPECT_EQ(second.wait(seconds(30)).exit_code, 0);
}

}  // namespace
}  // namespace yw::test

namespace yw::test {
namespace {

TEST_F(ReliabilityTest, KillNineMidBatchThenEveryJobCompletesOnceAndNoArtifactIsHalfWritten) {
  for (int i = 0; i < 6; ++i) {
    sox({"-n", "-r", "44100", "-c", "2", "-b", "16", in(fmt::format("k{}.wav", i)), "synth", "20",
         "pluck", std::to_string(100 + 25 * i), "synth", "20", "pinknoise", "mix", "vol", "0.5"});
  }
  // An expiry long enough for six songs separated at once on a loaded 2-core machine, yet short
  // enough that the killed worker's claims come back within the test (the worker's own
  // create_queue leaves an existing queue as it is).
  client_->create_queue("separate_stems__dead", {{"policy", "standard"}});
  client_->create_queue("separate_stems", {{"policy", "standard"},
                                           {"deadLetter", "separate_stems__dead"},
                                           {"expireInSeconds", 30},
                                           {"retryLimit", 3},
                                           {"retryDelay", 0}});
  start_worker({{"WORKER_CONCURRENCY", "6"}, {"YW_QUEUES", "separate_stems"}});
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(send("separate_stems",
                       {{"audio", "file://" + in(fmt::format("k{}.wav", i))}, {"record_id", i}}));
  ASSERT_TRUE(eventually([&] { return count("name = 'separate_stems' AND state = 'active'") >= 3; },
                         seconds(30)));
  worker_->signal(SIGKILL);
  worker_->wait(seconds(10));
  const int killed_active = count("name = 'separate_stems' AND state = 'active'");
  EXPECT_GT(killed_active, 0);

  // A new worker's sweep expires the dead worker's claims; each job then completes once.
  start_worker({{"WORKER_CONCURRENCY", "6"}, {"YW_QUEUES", "separate_stems"}});
  ASSERT_TRUE(eventually(
      [&] { return count("name = 'separate_stems' AND state = 'completed'") == 6; }, seconds(180)))
      << worker_->err_so_far();
  EXPECT_EQ(count("name = 'separate_stems'"), 6) << "no duplicate rows";
  EXPECT_EQ(count("state = 'active'"), 0);
  // Complete artifacts only: each record's two stems, and no temporary file anywhere.
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir_ + "/out"))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), dir_ + "/out").string());
  std::sort(files.begin(), files.end());
  std::vector<std::string> expected;
  for (int i = 0; i < 6; ++i)
    for (const char* stem : {"harmonic", "percussive"})
      expected.push_back(fmt::format("{}/{}.flac", i, stem));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(files, expected);
  worker_->signal(SIGTERM);
  EXPECT_EQ(worker_->wait(seconds(30)).exit_code, 0);
}

}  // namespace
}  // namespace yw::test
