// The extract_metadata and process_new_record handlers called the way the executor calls them
// (label unit): outputs, artifacts, child jobs, and bad job data failing terminally with a message
// that names the field.
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metadata/loopback_http.hpp"
#include "metadata/metadata_test_util.hpp"
#include "yw/common/error.hpp"
#include "yw/worker/handler.hpp"

namespace yw::test {
namespace {

using nlohmann::json;
using yw::worker::HandlerRegistry;
using yw::worker::JobContext;

class HandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    yw::worker::register_metadata_handlers(registry_);
    yw::worker::register_record_handlers(registry_);
    config_.input_roots = {dir_.path().string()};
    config_.output_uri = "file://" + (dir_ / "out").string();
    config_.storage_bucket = "tracks";
  }

  json call(const std::string& queue, const json& data, const std::string& job_id = "job-1") {
    const auto* h = registry_.find(queue);
    EXPECT_NE(h, nullptr) << queue;
    children_.clear();
    JobContext ctx;
    ctx.queue = queue;
    ctx.id = job_id;
    ctx.config = &config_;
    ctx.children = &children_;
    return (*h)(data, ctx);
  }

  // The InputError message for `data` on `queue` ("" when no InputError).
  std::string input_error(const std::string& queue, const json& data) {
    try {
      call(queue, data);
    } catch (const yw::InputError& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("not an InputError: ") + e.what();
    }
    return "no error";
  }

  ScratchDir dir_{"yw-handlers"};
  HandlerRegistry registry_;
  yw::worker::WorkerConfig config_;
  std::vector<JobContext::ChildJob> children_;
};

TEST_F(HandlersTest, ExtractMetadataProducesTheDocumentedOutputAndStoresTheWaveform) {
  const auto wav = dir_ / "song.wav";
  ASSERT_TRUE(run_tool({"sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav.string(), "synth",
                        "4", "sine", "440", "vol", "0.5"}));
  const json out =
      call("extract_metadata", {{"audio", "file://" + wav.string()}, {"record_id", 42}});
  EXPECT_EQ(out["record_id"], 42);
  EXPECT_EQ(out["sha256"].get<std::string>().size(), 64u);
  for (const char* k : {"container", "codec", "sample_rate", "channels", "bits_per_sample",
                        "duration_seconds", "frames", "bitrate_kbps"})
    EXPECT_TRUE(out["format"].contains(k)) << k;
  for (const char* k : {"title", "artist", "album", "album_artist", "track", "disc", "year",
                        "genre", "isrc", "has_cover_art"})
    EXPECT_TRUE(out["tags"].contains(k)) << k;
  for (const char* k :
       {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs"})
    EXPECT_TRUE(out["loudness"][k].is_number()) << k;
  EXPECT_TRUE(out["replaygain"]["track_gain_db"].is_number());
  EXPECT_EQ(out["format"]["frames"], 4 * 44100);
  const std::string uri = out["waveform"];
  EXPECT_EQ(uri, "file://" + (dir_ / "out" / "42" / "waveform.json").string());
  std::ifstream in(dir_ / "out" / "42" / "waveform.json");
  const json w = json::parse(in);
  EXPECT_EQ(w["version"], 2);
  EXPECT_EQ(w["data"].size(), 2 * w["length"].get<size_t>());
}

TEST_F(HandlersTest, ExtractMetadataFromHttpWithJobIdAsArtifactKey) {
  const auto flac = dir_ / "served.flac";
  ASSERT_TRUE(run_tool({"sox", "-n", "-r", "48000", "-c", "1", "-b", "24", flac.string(), "synth",
                        "3", "sine", "1000", "vol", "0.25"}));
  std::ifstream in(flac, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  LoopbackHttpServer server([&](const HttpRequest&) {
    HttpResponse res;
    res.headers = {{"Content-Type", "audio/flac"}};
    res.body = bytes;
    return res;
  });
  const json out =
      call("extract_metadata", {{"audio", server.url() + "/tracks/served.flac"}}, "job-77");
  EXPECT_TRUE(out["record_id"].is_null());
  EXPECT_EQ(out["format"]["codec"], "flac");
  EXPECT_EQ(out["format"]["sample_rate"], 48000);
  EXPECT_EQ(out["format"]["bits_per_sample"], 24);
  EXPECT_EQ(out["format"]["frames"], 3 * 48000);
  EXPECT_EQ(out["waveform"], "file://" + (dir_ / "out" / "job-77" / "waveform.json").string());
  EXPECT_NEAR(out["loudness"]["sample_peak_dbfs"].get<double>(), -12.04, 0.05);
}

TEST_F(HandlersTest, ExtractMetadataBadData) {
  EXPECT_EQ(input_error("extract_metadata", json::object()), "audio: required");
  EXPECT_NE(input_error("extract_metadata", {{"audio", 5}}).find("audio: expected a URI string"),
            std::string::npos);
  EXPECT_NE(input_error("extract_metadata", {{"audio", "gopher://x/y.wav"}})
                .find("audio: unsupported URI scheme 'gopher'"),
            std::string::npos);
  EXPECT_NE(input_error("extract_metadata", {{"audio", "file:///etc/passwd"}})
                .find("outside YW_INPUT_ROOTS"),
            std::string::npos);
  EXPECT_NE(input_error("extract_metadata",
                        {{"audio", "file://" + (dir_ / "x.wav").string()}, {"record_id", true}})
                .find("record_id: expected a number"),
            std::string::npos);
}

TEST_F(HandlersTest, RecordFansOutThreeChildrenWithStableIds) {
  const json data = {
      {"record_id", "rec-9"}, {"record_type", "track"}, {"audio", "https://cdn.example/a.mp3"}};
  const json out = call("process_new_record", data, "parent-1");
  EXPECT_EQ(out["record_id"], "rec-9");
  ASSERT_EQ(children_.size(), 3u);
  std::set<std::string> queues;
  for (const auto& c : children_) {
    queues.insert(c.queue);
    EXPECT_EQ(c.data, (json{{"audio", "https://cdn.example/a.mp3"}, {"record_id", "rec-9"}}));
    EXPECT_EQ(c.options["singletonKey"].get<std::string>().rfind("parent-1:", 0), 0u);
  }
  EXPECT_EQ(queues,
            (std::set<std::string>{"extract_metadata", "fingerprint_audio", "separate_stems"}));
  EXPECT_EQ(out["jobs"]["metadata"], children_[0].options["id"]);
  EXPECT_EQ(out["jobs"]["fingerprint"], children_[1].options["id"]);
  EXPECT_EQ(out["jobs"]["stems"], children_[2].options["id"]);
  // A retry of the same parent names the same children (pg-boss then inserts nothing new)...
  const json again = call("process_new_record", data, "parent-1");
  EXPECT_EQ(again, out);
  // ...and another parent gets its own.
  const json other = call("process_new_record", data, "parent-2");
  EXPECT_NE(other["jobs"]["metadata"], out["jobs"]["metadata"]);
  // Ids are UUIDs (pg-boss's id column is uuid).
  const std::string id = out["jobs"]["metadata"];
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '5');
}

TEST_F(HandlersTest, RecordFindsAudioInMetadataAndHonoursTasks) {
  json out = call("process_new_record", {{"record_id", 7},
                                         {"metadata", {{"audio_url", "http://h/a.wav"}}},
                                         {"tasks", {"fingerprint"}}});
  ASSERT_EQ(children_.size(), 1u);
  EXPECT_EQ(children_[0].queue, "fingerprint_audio");
  EXPECT_EQ(children_[0].data["audio"], "http://h/a.wav");
  EXPECT_EQ(out["jobs"].size(), 1u);

  call("process_new_record", {{"record_id", 7}, {"metadata", {{"storage_path", "/u/1/a.flac"}}}});
  ASSERT_EQ(children_.size(), 3u);
  EXPECT_EQ(children_[0].data["audio"], "supabase://tracks/u/1/a.flac");
}

TEST_F(HandlersTest, RecordWithoutAudioIsSkipped) {
  const json out = call("process_new_record", {{"record_id", 3}, {"metadata", {{"x", 1}}}});
  EXPECT_EQ(out["record_id"], 3);
  EXPECT_TRUE(out["skipped"].is_string());
  EXPECT_FALSE(out.contains("jobs"));
  EXPECT_TRUE(children_.empty());
}

TEST_F(HandlersTest, RecordBadDataNamesTheField) {
  EXPECT_EQ(input_error("process_new_record", {{"audio", "http://h/a.wav"}}),
            "record_id: required");
  EXPECT_NE(input_error("process_new_record", {{"record_id", {1, 2}}}).find("record_id: expected"),
            std::string::npos);
  EXPECT_NE(input_error("process_new_record", {{"record_id", 1}, {"audio", 12}})
                .find("audio: expected a URI string, got number"),
            std::string::npos);
  EXPECT_NE(input_error("process_new_record", {{"record_id", 1}, {"audio", "s3://b/k.wav"}})
                .find("audio: unsupported URI scheme 's3'"),
            std::string::npos);
  EXPECT_NE(input_error("process_new_record", {{"record_id", 1}, {"metadata", "x"}})
                .find("metadata: expected an object"),
            std::string::npos);
  EXPECT_NE(
      input_error("process_new_record", {{"record_id", 1}, {"metadata", {{"audio_url", false}}}})
          .find("metadata.audio_url: expected a URI string"),
      std::string::npos);
  EXPECT_NE(input_error("process_new_record",
                        {{"record_id", 1}, {"audio", "http://h/a"}, {"tasks", {"lyrics"}}})
                .find("tasks: unknown task 'lyrics'"),
            std::string::npos);
  EXPECT_NE(input_error("process_new_record", json::array()).find("data: expected a JSON object"),
            std::string::npos);
  EXPECT_TRUE(children_.empty());
}

}  // namespace
}  // namespace yw::test
