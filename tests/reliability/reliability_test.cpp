// What an operator trusts: bad input ends in the right state with a message a user can act on
// while the worker keeps running; a full disk fails a job retryably and leaves no partial file;
// SIGTERM in the middle of work exits 0 with nothing left `active` and nothing run twice;
// PostgreSQL down for 20 s under load loses nothing and runs nothing twice.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <typeinfo>

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

namespace yw::test {
namespace {

// How long PostgreSQL stays down in the outage test, and what runs through it.
constexpr auto kOutage = seconds(20);
constexpr int kShortJobs = 3000;  // process_new_record without audio: completes as skipped
constexpr int kSlowJobs = 4;      // extract_metadata held mid-download when the database goes
// Well above the outage, so no claim is expired by design while the database is away.
constexpr int kExpireSeconds = 120;
// The short jobs fall due evenly over this span after they are sent, so some are done before the
// outage, some are claimed or unsettled when it starts, and the rest wait for the restart.
constexpr double kDueSpreadSeconds = 12.0;

// Serves one WAV to every GET on 127.0.0.1, counting requests per path, and holds each response
// until release(): a handler downloading from it stays in the middle of its work until then. One
// thread per connection, so held requests do not block each other.
class GatedAudioServer {
 public:
  explicit GatedAudioServer(std::string wav) : wav_(std::move(wav)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 64) != 0) {
      throw std::runtime_error("gated audio server: bind/listen on 127.0.0.1 failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~GatedAudioServer() {
    {
      std::lock_guard lock(m_);
      stopping_ = released_ = true;
    }
    cv_.notify_all();
    acceptor_.join();
    for (auto& t : connections_)
      t.join();
    ::close(fd_);
  }
  GatedAudioServer(const GatedAudioServer&) = delete;
  GatedAudioServer& operator=(const GatedAudioServer&) = delete;

  std::string url(const std::string& path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  void release() {
    std::lock_guard lock(m_);
    released_ = true;
    cv_.notify_all();
  }
  std::map<std::string, int> requests() const {
    std::lock_guard lock(m_);
    return requests_;
  }
  bool wait_for_requests(int n, milliseconds timeout) const {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, timeout, [&] {
      int total = 0;
      for (const auto& [path, count] : requests_)
        total += count;
      return total >= n;
    });
  }

 private:
  void accept_loop() {
    while (true) {
      {
        std::lock_guard lock(m_);
        if (stopping_) return;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::lock_guard lock(m_);
      connections_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) {
        ::close(c);
        return;
      }
      request.append(buf, static_cast<std::size_t>(n));
    }
    const auto from = request.find(' ') + 1;
    const std::string path = request.substr(from, request.find(' ', from) - from);
    bool stopping = false;
    {
      std::unique_lock lock(m_);
      ++requests_[path];
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
      stopping = stopping_;
    }
    if (!stopping) {
      const std::string response =
          fmt::format(
              "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\n"
              "Connection: close\r\n\r\n",
              wav_.size()) +
          wav_;
      for (std::size_t at = 0; at < response.size();) {
        const ssize_t w = ::send(c, response.data() + at, response.size() - at, MSG_NOSIGNAL);
        if (w <= 0) break;
        at += static_cast<std::size_t>(w);
      }
    }
    ::close(c);
  }

  std::string wav_;
  int fd_ = -1;
  int port_ = 0;
  mutable std::mutex m_;
  mutable std::condition_variable cv_;
  bool released_ = false;
  bool stopping_ = false;
  std::map<std::string, int> requests_;
  std::vector<std::thread> connections_;
  std::thread acceptor_;
};

// The value of an unlabelled sample in a Prometheus exposition, or -1 when it is absent.
double metric_value(const std::string& exposition, const std::string& name) {
  const auto at = exposition.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + name.size() + 2));
}

// Running, not exited (an exited child stays a zombie until it is reaped).
bool alive(pid_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text;
  std::getline(stat, text);
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// The worker's JSON log lines (NODE_ENV=production), parsed.
std::vector<json> log_records(const std::string& err) {
  std::vector<json> out;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with('{')) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// PostgreSQL stopped for kOutage seconds under load and started again on the same port: the real
// worker process stays up, reconnects, and every job completes exactly once. Each handler run is
// recorded outside the database: the worker's log line for every job start (one per execution),
// and for the slow jobs also their download from the test's server and their artifact.
TEST(ReliabilityOutageTest, PostgresDownTwentySecondsUnderLoadNothingLostOrRunTwice) {
  const auto test_start = std::chrono::steady_clock::now();
  const std::string dir = make_temp_dir("yw-rel-outage");
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove_dir{dir};
  // As root the server runs as `postgres`, which must be able to enter the directory.
  fs::permissions(dir, fs::perms::others_exec, fs::perm_options::add);
  fs::create_directories(dir + "/in");
  fs::create_directories(dir + "/out");

  // A private cluster: the shared TEST_DATABASE_URL server is used by other tests in parallel.
  // Its port comes from a range of its own, so that while it is down another test starting a
  // cluster (they search upwards from 55432) does not take the port it must come back on.
  const std::string lib = std::string(YW_SOURCE_DIR) + "/scripts/lib/pg.sh";
  const std::string pgdir = dir + "/pg";
  const auto sh = [&](const std::string& script) {
    return run_process({"bash", "-c", "source '" + lib + "' && " + script}, ProcessOptions{},
                       seconds(120));
  };
  const int port_base = 56000 + static_cast<int>(::getpid() % 4000);
  auto r = sh(fmt::format("YW_PG_PORT_BASE={} YW_PG_FSYNC=off yw_pg_start '{}' && echo $YW_PG_PORT",
                          port_base, pgdir));
  if (r.exit_code != 0) {
    if (std::getenv("CI") != nullptr) FAIL() << "cannot start a private PostgreSQL: " << r.err;
    GTEST_SKIP() << "cannot start a private PostgreSQL: " << r.err;
  }
  struct StopPostgres {
    std::function<void()> fn;
    ~StopPostgres() { fn(); }
  } stop_postgres{[&] { sh("yw_pg_stop '" + pgdir + "'"); }};
  const std::string port = r.out.substr(0, r.out.find('\n'));
  const std::string url = "postgresql://postgres@127.0.0.1:" + port + "/postgres";
  const std::string schema = "pgboss";
  r = run_process({pgboss_cli(), "migrate", "--connection-string", url, "--schema", schema});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // Queues with an expiry far above the outage (the worker leaves existing queues as they are).
  queue::ConnectionPool pool({.url = url, .max_size = 2});
  queue::PgBossClient client(pool, schema);
  for (const std::string q : {"process_new_record", "extract_metadata"}) {
    client.create_queue(q + "__dead", {{"policy", "standard"}});
    client.create_queue(q, {{"policy", "standard"},
                            {"deadLetter", q + "__dead"},
                            {"expireInSeconds", kExpireSeconds},
                            {"retryLimit", 2},
                            {"retryDelay", 0}});
  }
  const auto count = [&](const std::string& where) {
    try {
      pqxx::connection c(url);
      pqxx::nontransaction tx(c);
      return tx
          .exec1(fmt::format("SELECT count(*) FROM {}.job WHERE name IN "
                             "('process_new_record', 'extract_metadata') AND ({})",
                             schema, where))[0]
          .as<int>();
    } catch (const std::exception&) {
      return -1;  // the database is away
    }
  };
  // Jobs by queue and state, for failure messages.
  const auto states = [&] {
    try {
      pqxx::connection c(url);
      pqxx::nontransaction tx(c);
      std::string out;
      for (const auto& row : tx.exec(fmt::format(
               "SELECT name, state, count(*), max(start_after) - now() FROM {}.job GROUP BY 1, 2 "
               "ORDER BY 1, 2",
               schema)))
        out += fmt::format("{} {}: {} (last due in {})\n", row[0].c_str(), row[1].c_str(),
                           row[2].c_str(), row[3].c_str());
      return out;
    } catch (const std::exception& e) {
      return std::string("database unreachable: ") + e.what();
    }
  };
  const auto eventually = [](auto pred, milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return pred();
  };

  // The slow jobs' audio: one second of sine, served (held) by the test.
  const std::string wav_path = dir + "/in/tone.wav";
  r = run_process(
      {"sox", "-n", "-r", "22050", "-c", "1", "-b", "16", wav_path, "synth", "1", "sine", "440"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ostringstream wav;
  wav << std::ifstream(wav_path, std::ios::binary).rdbuf();
  GatedAudioServer audio_server(wav.str());

  ProcessOptions opts;
  opts.cwd = dir;
  opts.env = {{"DATABASE_URL", url},
              {"PGBOSS_SCHEMA", schema},
              {"YW_QUEUES", "process_new_record,extract_metadata"},
              {"WORKER_CONCURRENCY", "8"},
              {"YW_DEVICE", "cpu"},
              {"YW_METRICS_ADDR", "127.0.0.1:0"},
              {"YW_INPUT_ROOTS", dir + "/in"},
              {"YW_OUTPUT_URI", "file://" + dir + "/out"},
              {"NODE_ENV", "production"},  // JSON log lines
              {"YW_LOG_LEVEL", "info"}};
  opts.unset_env = {"YW_MODEL"};
  BackgroundProcess worker({worker_binary(), "run"}, opts);
  ASSERT_TRUE(worker.wait_for_err("\"msg\":\"started\"", seconds(60))) << worker.err_so_far();
  int metrics_port = 0;
  for (const auto& rec : log_records(worker.err_so_far()))
    if (rec.value("msg", "") == "metrics listening") metrics_port = rec["port"].get<int>();
  ASSERT_GT(metrics_port, 0) << worker.err_so_far();
  const auto scrape = [&] {
    const std::string m = http_get(metrics_port, "/metrics");
    return metric_value(m, "yw_db_reconnects_total");
  };
  const double reconnects_before = scrape();
  EXPECT_EQ(reconnects_before, 0);

  // The load: slow jobs first (each held mid-handler by the audio server), then the short ones.
  std::set<std::string> slow_ids, short_ids;
  for (int k = 0; k < kSlowJobs; ++k) {
    const auto id = client.send("extract_metadata",
                                {{{"audio", audio_server.url(fmt::format("/slow/{}.wav", k))},
                                  {"record_id", "slow-" + std::to_string(k)}},
                                 json::object()});
    ASSERT_TRUE(id.has_value());
    slow_ids.insert(*id);
  }
  std::vector<queue::SendJob> short_jobs;
  for (int i = 0; i < kShortJobs; ++i) {
    short_jobs.push_back(
        {{{"record_id", i}}, {{"startAfter", kDueSpreadSeconds * i / kShortJobs}}});
  }
  for (std::size_t at = 0; at < short_jobs.size(); at += 1000) {
    const std::vector<queue::SendJob> chunk(
        short_jobs.begin() + static_cast<long>(at),
        short_jobs.begin() + static_cast<long>(std::min(at + 1000, short_jobs.size())));
    for (auto& id : client.send_many("process_new_record", chunk))
      short_ids.insert(id);
  }
  ASSERT_EQ(short_ids.size(), static_cast<std::size_t>(kShortJobs));
  const int total = kShortJobs + kSlowJobs;

  // Under load: every slow job is inside its handler and short jobs are flowing.
  ASSERT_TRUE(audio_server.wait_for_requests(kSlowJobs, seconds(60))) << worker.err_so_far();
  ASSERT_TRUE(eventually([&] { return count("state = 'completed'") >= 100; }, seconds(60)))
      << states() << worker.err_so_far();
  ASSERT_EQ(count("state = 'active' AND name = 'extract_metadata'"), kSlowJobs) << states();

  const int completed_at_stop = count("state = 'completed'");
  const int active_at_stop = count("state = 'active'");
  // Immediate shutdown: no goodbye to the clients (their sockets just close), no shutdown
  // checkpoint, crash recovery on restart — a crashed or killed server, the harsher case. The
  // fast shutdown (FATAL 57P01 to every session) is what tests/interop's restart test uses.
  r =
      sh(fmt::format("bin=$(yw_pg_bindir) && yw_pg_as_owner \"$bin/pg_ctl\" -D '{}/pgdata' "
                     "-m immediate -w -t 60 stop",
                     pgdir));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto down_at = std::chrono::steady_clock::now();
  EXPECT_EQ(count("true"), -1) << "PostgreSQL still answers after the stop";
  const std::size_t log_at_stop = worker.err_so_far().size();

  // The slow handlers finish while the database is away: their results cannot be settled yet.
  audio_server.release();
  std::set<std::string> finished_while_down;
  const auto finished_slow = [&] {
    for (const auto& rec : log_records(worker.err_so_far().substr(log_at_stop)))
      if (rec.value("msg", "") == "job completed" && slow_ids.count(rec.value("job_id", "")))
        finished_while_down.insert(rec["job_id"].get<std::string>());
    return finished_while_down.size() == slow_ids.size();
  };
  EXPECT_TRUE(eventually(finished_slow, kOutage - seconds(5))) << worker.err_so_far();
  // The worker lives through the outage and keeps answering its health endpoint; it is not ready.
  EXPECT_TRUE(http_get(metrics_port, "/healthz").starts_with("HTTP/1.1 200"));
  const std::string unready = http_get(metrics_port, "/readyz");
  EXPECT_TRUE(unready.starts_with("HTTP/1.1 503")) << unready;
  while (std::chrono::steady_clock::now() - down_at < kOutage) {
    ASSERT_TRUE(alive(worker.pid())) << "the worker died while the database was down:\n"
                                     << worker.err_so_far();
    std::this_thread::sleep_for(milliseconds(250));
  }
  ASSERT_TRUE(alive(worker.pid())) << worker.err_so_far();
  EXPECT_TRUE(finished_slow()) << "slow handlers did not finish during the outage";

  // Back on the same port.
  r = sh(fmt::format("YW_PG_PORT_BASE={} YW_PG_FSYNC=off yw_pg_start '{}' && echo $YW_PG_PORT",
                     port, pgdir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.substr(0, r.out.find('\n')), port) << "PostgreSQL came back on another port";
  const auto up_at = std::chrono::steady_clock::now();
  const int completed_at_restart = count("state = 'completed'");
  EXPECT_LT(completed_at_restart, total) << "the load should outlast the outage";

  ASSERT_TRUE(eventually([&] { return count("state = 'completed'") == total; }, seconds(120)))
      << count("state = 'completed'") << " of " << total << " completed\n"
      << worker.err_so_far();
  const auto drained_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(alive(worker.pid()));

  // The database's final state: every job sent is there once, completed on its first attempt
  // with its own output; nothing active, created or retried.
  EXPECT_EQ(count("true"), total) << "no job lost, no row added";
  EXPECT_EQ(count("state <> 'completed'"), 0);
  EXPECT_EQ(count("retry_count <> 0"), 0) << "nothing was expired, failed back or retried";
  EXPECT_EQ(count("name = 'process_new_record' AND output->'record_id' = data->'record_id' AND "
                  "output ? 'skipped'"),
            kShortJobs);
  EXPECT_EQ(count("name = 'extract_metadata' AND output->'record_id' = data->'record_id' AND "
                  "output->>'waveform' LIKE 'file://%'"),
            kSlowJobs);
  {
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    std::set<std::string> in_db;
    for (const auto& row :
         tx.exec(fmt::format("SELECT id::text FROM {}.job WHERE name IN ('process_new_record', "
                             "'extract_metadata')",
                             schema)))
      in_db.insert(row[0].as<std::string>());
    std::set<std::string> sent = short_ids;
    sent.insert(slow_ids.begin(), slow_ids.end());
    EXPECT_EQ(in_db, sent);
  }

  // Outside the database: each job's handler ran exactly once.
  const std::vector<json> records = log_records(worker.err_so_far());
  std::map<std::string, int> started, completed;
  int discarded = 0;
  std::map<std::string, int> warnings;  // what the worker said about the outage, for the figures
  for (const auto& rec : records) {
    const std::string msg = rec.value("msg", "");
    if (rec.value("level", "") != "info") ++warnings[rec.value("level", "") + ": " + msg];
    if (msg == "job started") ++started[rec.value("job_id", "")];
    if (msg == "job completed") ++completed[rec.value("job_id", "")];
    if (msg == "job result discarded: its attempt was already settled") ++discarded;
  }
  EXPECT_EQ(started.size(), static_cast<std::size_t>(total));
  int ran_twice = 0;
  for (const auto& [id, n] : started) {
    if (n != 1) {
      ++ran_twice;
      ADD_FAILURE() << id << " started " << n << " times";
    }
    EXPECT_EQ(completed[id], n) << id;
    EXPECT_TRUE(short_ids.count(id) != 0 || slow_ids.count(id) != 0) << id << " was never sent";
  }
  EXPECT_EQ(ran_twice, 0);
  EXPECT_EQ(discarded, 0);
  const auto downloads = audio_server.requests();
  EXPECT_EQ(downloads.size(), static_cast<std::size_t>(kSlowJobs));
  for (int k = 0; k < kSlowJobs; ++k) {
    EXPECT_EQ(downloads.count(fmt::format("/slow/{}.wav", k)) != 0
                  ? downloads.at(fmt::format("/slow/{}.wav", k))
                  : 0,
              1)
        << "slow job " << k << " was not downloaded exactly once";
    EXPECT_TRUE(fs::exists(fmt::format("{}/out/slow-{}/waveform.json", dir, k))) << k;
  }

  // The worker said it reconnected (its LISTEN connection retries with a backoff of up to 5 s,
  // so the line may follow the drain), and its database reconnect counter went up.
  EXPECT_TRUE(worker.wait_for_err("\"msg\":\"listener reconnected\"", seconds(30)))
      << worker.err_so_far();
  int listener_reconnected = 0;
  for (const auto& rec : log_records(worker.err_so_far()))
    listener_reconnected += rec.value("msg", "") == "listener reconnected" ? 1 : 0;
  const double reconnects_after = scrape();
  EXPECT_GT(reconnects_after, reconnects_before);

  worker.signal(SIGTERM);
  const auto stopped = worker.wait(seconds(30));
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_NE(stopped.err.find("stopped cleanly"), std::string::npos);
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::printf(
      "outage: %d jobs (%d short, %d held mid-handler), PostgreSQL down %.1f s (immediate stop); "
      "at the stop %d completed and %d active, %d completed when it came back, the rest %.1f s "
      "after; yw_db_reconnects_total %.0f, listener reconnects %d; test wall time %.1f s\n",
      total, kShortJobs, kSlowJobs, secs(up_at - down_at), completed_at_stop, active_at_stop,
      completed_at_restart, secs(drained_at - up_at), reconnects_after, listener_reconnected,
      secs(std::chrono::steady_clock::now() - test_start));
  for (const auto& [what, n] : warnings)
    std::printf("  worker %s (x%d)\n", what.c_str(), n);
}

}  // namespace
}  // namespace yw::test

namespace yw::test {
namespace {

// The outage can cut a transaction off between its last statement and COMMIT's answer; pqxx then
// throws in_doubt_error rather than broken_connection. The worker must treat it as the lost
// connection it is and retry (the settle is fenced). Classified as anything else, a completion
// with child jobs (process_new_record) was failed instead of retried, and the job ran again.
TEST(ReliabilityOutageTest, ACommitCutOffByALostConnectionIsRetriedAsAConnectionLoss) {
  YW_REQUIRE_DATABASE();
  pqxx::connection victim(test_database_url());
  pqxx::connection killer(test_database_url());
  pqxx::work tx(victim);
  const int pid = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  {
    pqxx::nontransaction k(killer);
    k.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    // Gone once its row leaves pg_stat_activity.
    const auto until = std::chrono::steady_clock::now() + seconds(30);
    while (k.exec1("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid))[0]
                   .as<int>() != 0 &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(milliseconds(20));
  }
  try {
    tx.commit();
    FAIL() << "COMMIT on a terminated backend succeeded";
  } catch (const std::exception& e) {
    EXPECT_NE(dynamic_cast<const pqxx::in_doubt_error*>(&e), nullptr)
        << typeid(e).name() << ": " << e.what();
    EXPECT_TRUE(queue::is_connection_error(e)) << e.what();
  }
}

}  // namespace
}  // namespace yw::test
