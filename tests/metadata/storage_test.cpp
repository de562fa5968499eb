// Storage (design.md §2): file:// confinement, http(s) downloads against a loopback server, and
// atomic file artifacts.
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>

#include "metadata/loopback_http.hpp"
#include "storage/storage_test_files.hpp"
#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/worker/storage.hpp"

namespace fs = std::filesystem;
using yw::worker::fetch_input;
using yw::worker::FetchLimits;
using yw::worker::put_artifact;
using yw::worker::WorkerConfig;

namespace {

using yw::test::read_all;
using yw::test::some_audio;
using yw::test::write_file;

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::path(yw::test::make_temp_dir("yw-storage"));
    root_ = tmp_ / "root";
    outside_ = tmp_ / "outside";
    fs::create_directories(root_ / "sub");
    fs::create_directories(outside_);
    write_file(root_ / "sub" / "song.wav", some_audio(100));
    write_file(outside_ / "secret.wav", some_audio(50));
    config_.input_roots = {root_.string()};
    config_.output_uri = "file://" + (tmp_ / "out").string();
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // The message of the InputError `f` throws ("" when it throws nothing or something else).
  template <typename F>
  static std::string input_error(F&& f) {
    try {
      f();
    } catch (const yw::InputError& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("not an InputError: ") + e.what();
    }
    return "no error";
  }

  fs::path tmp_, root_, outside_;
  WorkerConfig config_;
};

TEST_F(StorageTest, FileUnderRootResolves) {
  const auto in = fetch_input("file://" + (root_ / "sub" / "song.wav").string(), config_);
  EXPECT_EQ(in.path(), fs::canonical(root_ / "sub" / "song.wav"));
  EXPECT_EQ(read_all(in.path()), some_audio(100));
}

TEST_F(StorageTest, FilePercentEncodedNameResolves) {
  write_file(root_ / "a b é.wav", some_audio(10));
  const auto in = fetch_input("file://" + root_.string() + "/a%20b%20%C3%A9.wav", config_);
  EXPECT_EQ(in.path().filename(), "a b é.wav");
}

TEST_F(StorageTest, FileRefusesDotDot) {
  const std::string uri = "file://" + (root_ / "sub").string() + "/../sub/song.wav";
  EXPECT_NE(input_error([&] { fetch_input(uri, config_); }).find("'..' is not allowed"),
            std::string::npos);
  // Even when the `..` is percent-encoded.
  const std::string enc = "file://" + (root_ / "sub").string() + "/%2E%2E/sub/song.wav";
  EXPECT_NE(input_error([&] { fetch_input(enc, config_); }).find("'..' is not allowed"),
            std::string::npos);
}

TEST_F(StorageTest, FileRefusesAbsolutePathOutsideRoots) {
  const std::string msg =
      input_error([&] { fetch_input("file://" + (outside_ / "secret.wav").string(), config_); });
  EXPECT_NE(msg.find("outside YW_INPUT_ROOTS"), std::string::npos) << msg;
  // A root that is a prefix by characters but not by path components does not count.
  fs::create_directories(tmp_ / "rootx");
  write_file(tmp_ / "rootx" / "a.wav", some_audio(10));
  EXPECT_NE(input_error([&] {
              fetch_input("file://" + (tmp_ / "rootx" / "a.wav").string(), config_);
            }).find("outside YW_INPUT_ROOTS"),
            std::string::npos);
}

TEST_F(StorageTest, FileRefusesSymlinkLeavingRoots) {
  fs::create_symlink(outside_ / "secret.wav", root_ / "link.wav");
  fs::create_directory_symlink(outside_, root_ / "dirlink");
  const std::string msg =
      input_error([&] { fetch_input("file://" + (root_ / "link.wav").string(), config_); });
  EXPECT_NE(msg.find("outside YW_INPUT_ROOTS"), std::string::npos) << msg;
  EXPECT_NE(msg.find("secret.wav"), std::string::npos) << "names where it resolves: " << msg;
  EXPECT_NE(input_error([&] {
              fetch_input("file://" + (root_ / "dirlink" / "secret.wav").string(), config_);
            }).find("outside YW_INPUT_ROOTS"),
            std::string::npos);
  // A symlink that stays inside the roots is fine.
  fs::create_symlink(root_ / "sub" / "song.wav", root_ / "inside.wav");
  EXPECT_EQ(fetch_input("file://" + (root_ / "inside.wav").string(), config_).path(),
            fs::canonical(root_ / "sub" / "song.wav"));
}

TEST_F(StorageTest, FileMissingDirectoryOrNoRoots) {
  EXPECT_NE(input_error([&] {
              fetch_input("file://" + (root_ / "nope.wav").string(), config_);
            }).find("cannot open"),
            std::string::npos);
  EXPECT_NE(input_error([&] {
              fetch_input("file://" + (root_ / "sub").string(), config_);
            }).find("not a regular file"),
            std::string::npos);
  WorkerConfig no_roots = config_;
  no_roots.input_roots.clear();
  EXPECT_NE(input_error([&] {
              fetch_input("file://" + (root_ / "sub" / "song.wav").string(), no_roots);
            }).find("YW_INPUT_ROOTS is empty"),
            std::string::npos);
}

TEST_F(StorageTest, UnknownSchemeIsInputError) {
  const std::string msg = input_error([&] { fetch_input("ftp://host/a.wav", config_); });
  EXPECT_NE(msg.find("audio: unsupported URI scheme 'ftp'"), std::string::npos) << msg;
  EXPECT_NE(input_error([&] { fetch_input("/abs/path.wav", config_); }).find("scheme"),
            std::string::npos);
  EXPECT_NE(input_error([&] { fetch_input("", config_); }).find("audio: empty"), std::string::npos);
}

// ---- http(s) --------------------------------------------------------------------------------

TEST_F(StorageTest, HttpServesFileIntoTemporaryWithSameExtension) {
  const std::string body = some_audio(200000);
  yw::test::LoopbackHttpServer server([&](const yw::test::HttpRequest& req) {
    yw::test::HttpResponse res;
    if (req.target != "/media/song.flac?sig=1") {
      res.status = 404;
      return res;
    }
    res.headers = {{"Content-Type", "audio/flac"}};
    res.body = body;
    return res;
  });
  fs::path where;
  {
    const auto in = fetch_input(server.url() + "/media/song.flac?sig=1", config_);
    where = in.path();
    EXPECT_EQ(where.extension(), ".flac");
    EXPECT_EQ(read_all(where), body);
  }
  EXPECT_FALSE(fs::exists(where)) << "the temporary download is removed with its LocalInput";
}

TEST_F(StorageTest, Http404IsInputError) {
  yw::test::LoopbackHttpServer server([](const yw::test::HttpRequest&) {
    yw::test::HttpResponse res;
    res.status = 404;
    res.headers = {{"Content-Type", "text/plain"}};
    res.body = "no such file";
    return res;
  });
  const std::string msg = input_error([&] { fetch_input(server.url() + "/x.mp3", config_); });
  EXPECT_NE(msg.find("HTTP 404"), std::string::npos) << msg;
}

TEST_F(StorageTest, HttpHtmlPageIsNotAudio) {
  const std::string html = "<!DOCTYPE html><html><body>Sign in</body></html>";
  yw::test::LoopbackHttpServer labelled([&](const yw::test::HttpRequest&) {
    yw::test::HttpResponse res;
    res.headers = {{"Content-Type", "text/html; charset=utf-8"}};
    res.body = html;
    return res;
  });
  std::string msg = input_error([&] { fetch_input(labelled.url() + "/a.wav", config_); });
  EXPECT_NE(msg.find("unsupported format 'text/html'"), std::string::npos) << msg;
  // The same page mislabelled as binary is recognised by its first bytes.
  yw::test::LoopbackHttpServer mislabelled([&](const yw::test::HttpRequest&) {
    yw::test::HttpResponse res;
    res.headers = {{"Content-Type", "application/octet-stream"}};
    res.body = "\n  " + html;
    return res;
  });
  msg = input_error([&] { fetch_input(mislabelled.url() + "/a.wav", config_); });
  EXPECT_NE(msg.find("unsupported format"), std::string::npos) << msg;
}

TEST_F(StorageTest, HttpOversizeBodyIsRefused) {
  FetchLimits limits;
  limits.max_bytes = 10000;
  for (const bool announce : {true, false}) {
    yw::test::LoopbackHttpServer server([&](const yw::test::HttpRequest&) {
      yw::test::HttpResponse res;
      res.headers = {{"Content-Type", "audio/wav"}};
      res.body = some_audio(50000);
      res.omit_length = !announce;
      return res;
    });
    const std::string msg =
        input_error([&] { fetch_input(server.url() + "/big.wav", config_, limits); });
    EXPECT_NE(msg.find("larger than the 10000 byte limit"), std::string::npos)
        << "announce=" << announce << ": " << msg;
  }
}

TEST_F(StorageTest, HttpStalledConnectionIsRetryable) {
  yw::test::LoopbackHttpServer server([&](const yw::test::HttpRequest&) {
    yw::test::HttpResponse res;
    res.headers = {{"Content-Type", "audio/wav"}};
    res.body = some_audio(100000);
    res.stall_after = 1000;
    return res;
  });
  FetchLimits limits;
  limits.stall_timeout_s = 1;
  limits.total_timeout_s = 20;
  const auto start = std::chrono::steady_clock::now();
  try {
    fetch_input(server.url() + "/slow.wav", config_, limits);
    ADD_FAILURE() << "a stalled download must fail";
  } catch (const yw::InputError& e) {
    ADD_FAILURE() << "a stall is transient, not bad input: " << e.what();
  } catch (const yw::Error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
}

TEST_F(StorageTest, Http503IsRetryableAndRefusedPortIsRetryable) {
  yw::test::LoopbackHttpServer server([](const yw::test::HttpRequest&) {
    yw::test::HttpResponse res;
    res.status = 503;
    res.body = "busy";
    return res;
  });
  try {
    fetch_input(server.url() + "/a.wav", config_);
    ADD_FAILURE() << "503 must fail";
  } catch (const yw::InputError& e) {
    ADD_FAILURE() << "503 is transient: " << e.what();
  } catch (const yw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 503"), std::string::npos) << e.what();
  }
  std::string gone;
  {
    gone = yw::test::LoopbackHttpServer([](const auto&) { return yw::test::HttpResponse{}; }).url();
  }
  try {
    fetch_input(gone + "/a.wav", config_);
    ADD_FAILURE() << "a refused connection must fail";
  } catch (const yw::InputError& e) {
    ADD_FAILURE() << "a refused connection is transient: " << e.what();
  } catch (const yw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos) << e.what();
  }
}

// supabase:// is tested in tests/storage/supabase_storage_test.cpp, against a stand-in that
// answers as the real storage-api does.

// ---- file artifacts ---------------------------------------------------------------------------

TEST_F(StorageTest, FileArtifactIsWrittenWholeAndRetryOverwrites) {
  write_file(tmp_ / "a.json", "first");
  const std::string uri = put_artifact(tmp_ / "a.json", "42/waveform.json", config_);
  EXPECT_EQ(uri, "file://" + (tmp_ / "out" / "42" / "waveform.json").string());
  EXPECT_EQ(read_all(tmp_ / "out" / "42" / "waveform.json"), "first");
  write_file(tmp_ / "a.json", "second");
  EXPECT_EQ(put_artifact(tmp_ / "a.json", "42/waveform.json", config_), uri);
  EXPECT_EQ(read_all(tmp_ / "out" / "42" / "waveform.json"), "second");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp_ / "out" / "42"))
    ++entries;
  EXPECT_EQ(entries, 1u) << "no temporary files left behind";
  EXPECT_NE(input_error([&] {
              put_artifact(tmp_ / "a.json", "../escape.json", config_);
            }).find("'..' is not allowed"),
            std::string::npos);
  EXPECT_NE(
      input_error([&] { put_artifact(tmp_ / "a.json", "/abs.json", config_); }).find("relative"),
      std::string::npos);
}

// A full disk, simulated with a file-size limit (the write fails part way with EFBIG exactly as
// it would with ENOSPC): a retryable error, and neither the artifact nor a temporary remains.
TEST_F(StorageTest, FailedArtifactWriteLeavesNothing) {
  write_file(tmp_ / "big.wav", some_audio(300000));
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 100000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool retryable = false;
  std::string what;
  try {
    put_artifact(tmp_ / "big.wav", "7/stem.wav", config_);
  } catch (const yw::Error& e) {
    retryable = e.retryable();
    what = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(retryable) << what;
  EXPECT_NE(what.find("cannot write"), std::string::npos) << what;
  EXPECT_FALSE(fs::exists(tmp_ / "out" / "7" / "stem.wav"));
  EXPECT_TRUE(fs::is_empty(tmp_ / "out" / "7")) << "temporary removed";
}

}  // namespace
