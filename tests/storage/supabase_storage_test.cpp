// supabase:// storage against a loopback stand-in that answers as the real storage-api does
// (real-world.md §2; see supabase_standin.hpp): one test per row of that document's table, plus
// the documented request shapes, User-Agent and Cache-Control, and readiness.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "storage/storage_test_files.hpp"
#include "storage/supabase_standin.hpp"
#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/common/readiness.hpp"
#include "yw/worker/storage.hpp"
#include "yw/worker/supabase_errors.hpp"

namespace fs = std::filesystem;
using yw::worker::fetch_input;
using yw::worker::put_artifact;
using yw::worker::StorageConfigError;
using yw::worker::WorkerConfig;

namespace {

using yw::test::read_all;
using yw::test::some_audio;
using yw::test::write_file;

// How a call failed: "config: <msg>", "input: <msg>", "transient: <msg>" or "ok".
template <typename F>
std::string outcome(F&& f) {
  try {
    f();
  } catch (const StorageConfigError& e) {
    return std::string("config: ") + e.what();
  } catch (const yw::InputError& e) {
    return std::string("input: ") + e.what();
  } catch (const yw::Error& e) {
    return std::string(e.retryable() ? "transient: " : "permanent: ") + e.what();
  }
  return "ok";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string readiness(std::string_view name) {
  const auto r = yw::Readiness::global().reasons();
  const auto it = r.find(name);
  return it == r.end() ? std::string() : it->second;
}

class SupabaseStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::path(yw::test::make_temp_dir("yw-supabase"));
    supa_.add_bucket("tracks", {});  // private
    supa_.add_bucket("public-tracks",
                     {.is_public = true, .allowed_mime_types = {}, .file_size_limit = -1});
    supa_.add_bucket("artifacts", {});
    supa_.put_object("tracks/u/song.wav", some_audio(2000));
    supa_.put_object("public-tracks/u/song.wav", some_audio(1000));
    config_.supabase_url = supa_.url();
    config_.supabase_service_role_key = "service-key";
    config_.output_uri = "supabase://artifacts/yesod";
    write_file(tmp_ / "w.json", R"({"version":2})");
    yw::Readiness::global().clear(yw::worker::kReadinessStorageDownload);
    yw::Readiness::global().clear(yw::worker::kReadinessStorageUpload);
  }
  void TearDown() override { fs::remove_all(tmp_); }

  std::string download(const std::string& uri) {
    return outcome([&] { fetch_input(uri, config_); });
  }
  std::string upload(const std::string& key = "rec-1/waveform.json") {
    return outcome([&] { put_artifact(tmp_ / "w.json", key, config_); });
  }

  yw::test::SupabaseStandIn supa_;
  fs::path tmp_;
  WorkerConfig config_;
};

TEST_F(SupabaseStorageTest, DownloadAndUploadUseTheDocumentedRequests) {
  const auto in = fetch_input("supabase://tracks/u/song.wav", config_);
  EXPECT_EQ(read_all(in.path()), some_audio(2000));
  EXPECT_EQ(put_artifact(tmp_ / "w.json", "rec 7/waveform.json", config_),
            "supabase://artifacts/yesod/rec 7/waveform.json");
  // A rerun overwrites: x-upsert.
  write_file(tmp_ / "w.json", R"({"version":3})");
  EXPECT_EQ(upload("rec 7/waveform.json"), "ok");
  const auto reqs = supa_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0], "GET /storage/v1/object/authenticated/tracks/u/song.wav");
  EXPECT_EQ(reqs[1], "POST /storage/v1/object/artifacts/yesod/rec%207/waveform.json");
  const auto o = supa_.object("artifacts/yesod/rec 7/waveform.json");
  EXPECT_EQ(o.bytes, R"({"version":3})");
  EXPECT_EQ(o.content_type, "application/json");
  EXPECT_EQ(o.cache_control, "max-age=3600") << "without it the server stores no-cache";
  EXPECT_TRUE(o.user_agent.starts_with("yesod-worker/")) << o.user_agent;
}

// Rows 1-3: keys the server refuses are our configuration: retryable, readiness down.
TEST_F(SupabaseStorageTest, RefusedKeysAreTheDeploymentsFaultAndTurnReadinessDown) {
  config_.supabase_service_role_key = "aaa.bbb.ccc";  // signed with another secret
  const std::string signed_other = download("supabase://tracks/u/song.wav");
  EXPECT_TRUE(signed_other.starts_with("config: ")) << signed_other;
  EXPECT_TRUE(has(signed_other, "signature verification failed")) << signed_other;
  EXPECT_TRUE(has(signed_other, "SUPABASE_SERVICE_ROLE_KEY")) << signed_other;
  EXPECT_TRUE(has(readiness("storage.download"), "SUPABASE_SERVICE_ROLE_KEY"));

  config_.supabase_service_role_key = "expired-key";
  const std::string expired = download("supabase://tracks/u/song.wav");
  EXPECT_TRUE(expired.starts_with("config: ")) << expired;
  EXPECT_TRUE(has(expired, "has expired")) << expired;

  config_.supabase_service_role_key = "sb_secret_not_a_jwt";
  const std::string not_jwt = download("supabase://tracks/u/song.wav");
  EXPECT_TRUE(not_jwt.starts_with("config: ")) << not_jwt;
  EXPECT_TRUE(has(not_jwt, "is not a JWT")) << not_jwt;
  EXPECT_TRUE(upload().starts_with("config: "));
  EXPECT_FALSE(readiness("storage.upload").empty());

  // Fixed: the next request that works clears its reason.
  config_.supabase_service_role_key = "service-key";
  EXPECT_EQ(download("supabase://tracks/u/song.wav"), "ok");
  EXPECT_EQ(readiness("storage.download"), "");
  EXPECT_FALSE(readiness("storage.upload").empty()) << "uploads have not worked yet";
  EXPECT_EQ(upload(), "ok");
  EXPECT_EQ(readiness("storage.upload"), "");
}

// Row 4: anon key, private bucket: RLS hides the row, indistinguishable from a missing object.
TEST_F(SupabaseStorageTest, AnonKeyOnAPrivateBucketLooksMissingAndSaysWhy) {
  config_.supabase_service_role_key.clear();
  config_.supabase_anon_key = "anon-key";
  EXPECT_EQ(download("supabase://public-tracks/u/song.wav"), "ok");
  const std::string hidden = download("supabase://tracks/u/song.wav");
  EXPECT_TRUE(hidden.starts_with("input: ")) << hidden;
  EXPECT_TRUE(has(hidden, "'supabase://tracks/u/song.wav' not found")) << hidden;
  EXPECT_TRUE(has(hidden, "set SUPABASE_SERVICE_ROLE_KEY")) << hidden;
}

// Row 5: anon key, upload: row-level security refuses it: configuration.
TEST_F(SupabaseStorageTest, AnonKeyUploadIsRefusedByRowLevelSecurity) {
  config_.supabase_service_role_key.clear();
  config_.supabase_anon_key = "anon-key";
  const std::string rls = upload();
  EXPECT_TRUE(rls.starts_with("config: ")) << rls;
  EXPECT_TRUE(has(rls, "row-level security")) << rls;
  EXPECT_TRUE(has(rls, "SUPABASE_ANON_KEY")) << rls;
  EXPECT_TRUE(has(readiness("storage.upload"), "row-level security"));
}

// Row 6: a missing input object or bucket is the job's input: terminal, naming the URI.
TEST_F(SupabaseStorageTest, MissingInputObjectOrBucketIsTerminalAndNamesTheUri) {
  const std::string key = download("supabase://tracks/u/missing.wav");
  EXPECT_TRUE(key.starts_with("input: ")) << key;
  EXPECT_TRUE(has(key, "supabase://tracks/u/missing.wav")) << key;
  EXPECT_TRUE(has(key, "NoSuchKey")) << key;
  const std::string bucket = download("supabase://nobucket/u/song.wav");
  EXPECT_TRUE(bucket.starts_with("input: ")) << bucket;
  EXPECT_TRUE(has(bucket, "NoSuchBucket")) << bucket;
  EXPECT_EQ(readiness("storage.download"), "") << "the job's input is not the deployment's fault";
}

// Row 7: the output bucket missing is configuration.
TEST_F(SupabaseStorageTest, MissingOutputBucketIsConfiguration) {
  config_.output_uri = "supabase://no-such-bucket/yesod";
  const std::string r = upload();
  EXPECT_TRUE(r.starts_with("config: ")) << r;
  EXPECT_TRUE(has(r, "output bucket 'no-such-bucket' does not exist")) << r;
  EXPECT_TRUE(has(r, "YW_OUTPUT_URI")) << r;
}

// Row 8: the bucket's allowed_mime_types exclude ours.
TEST_F(SupabaseStorageTest, MimeTypeTheBucketRefusesIsConfiguration) {
  supa_.add_bucket(
      "artifacts",
      {.is_public = false, .allowed_mime_types = {"audio/flac"}, .file_size_limit = -1});
  const std::string r = upload();
  EXPECT_TRUE(r.starts_with("config: ")) << r;
  EXPECT_TRUE(has(r, "application/json")) << r;
  EXPECT_TRUE(has(r, "allowed_mime_types")) << r;
}

// Row 9: the bucket's file_size_limit: the message names the artifact's size and the limit.
TEST_F(SupabaseStorageTest, ArtifactOverTheBucketSizeLimitNamesTheLimit) {
  supa_.add_bucket("artifacts",
                   {.is_public = false, .allowed_mime_types = {}, .file_size_limit = 5});
  const std::string r = upload();
  EXPECT_TRUE(r.starts_with("config: ")) << r;
  EXPECT_TRUE(has(r, "13 bytes")) << r;
  EXPECT_TRUE(has(r, "file_size_limit of 5 bytes")) << r;
}

// Row 10: a non-ASCII key is refused: terminal.
TEST_F(SupabaseStorageTest, NonAsciiKeyIsTerminal) {
  const std::string r = download("supabase://tracks/u/caf%C3%A9.wav");
  EXPECT_TRUE(r.starts_with("input: ")) << r;
  EXPECT_TRUE(has(r, "InvalidKey")) << r;
}

// Row 11: SUPABASE_URL pointing at storage-api itself: fastify's HTTP 404 route-not-found.
TEST_F(SupabaseStorageTest, UrlWithoutTheStorageGatewayIsConfiguration) {
  yw::test::SupabaseStandIn bare(/*gateway=*/false);
  config_.supabase_url = bare.url();
  const std::string r = download("supabase://tracks/u/song.wav");
  EXPECT_TRUE(r.starts_with("config: ")) << r;
  EXPECT_TRUE(has(r, "SUPABASE_URL=" + bare.url())) << r;
  EXPECT_TRUE(has(r, "/storage/v1")) << r;
}

// The server's own trouble (500, 429 too many connections, 544 database timeout): retryable,
// and not the deployment's fault.
TEST_F(SupabaseStorageTest, ServerTroubleIsTransient) {
  for (const int status : {500, 429, 544}) {
    supa_.fail_next(2, status, R"({"statusCode":")" + std::to_string(status) + R"("})");
    const std::string d = download("supabase://tracks/u/song.wav");
    EXPECT_TRUE(d.starts_with("transient: ")) << status << ": " << d;
    const std::string u = upload();
    EXPECT_TRUE(u.starts_with("transient: ")) << status << ": " << u;
  }
  EXPECT_EQ(readiness("storage.download"), "");
  EXPECT_EQ(readiness("storage.upload"), "");
}

}  // namespace
