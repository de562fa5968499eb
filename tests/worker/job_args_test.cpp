#include "yw/worker/job_args.hpp"

#include <gtest/gtest.h>

#include "yw/common/error.hpp"

namespace yw::worker {
namespace {

using nlohmann::json;

// The InputError message for `data`, or "" when it parses.
template <typename Args>
std::string error_of(const json& data) {
  try {
    Args::from_json(data);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(JobArgsTest, FingerprintDefaultsAndFields) {
  auto a = FingerprintArgs::from_json({{"audio", "file:///data/a.wav"}, {"extra", 1}});
  EXPECT_EQ(a.audio, "file:///data/a.wav");
  EXPECT_TRUE(a.record_id.is_null());
  EXPECT_EQ(a.length_seconds, 120.0);
  EXPECT_FALSE(a.raw);
  a = FingerprintArgs::from_json(
      {{"audio", "https://x/a.mp3"}, {"record_id", 7}, {"length_seconds", 0}, {"raw", true}});
  EXPECT_EQ(a.record_id, 7);
  EXPECT_EQ(a.length_seconds, 0.0);
  EXPECT_TRUE(a.raw);
}

TEST(JobArgsTest, MistypedOrMissingFieldsNameTheField) {
  EXPECT_EQ(error_of<FingerprintArgs>(json::object()), "audio: required");
  EXPECT_EQ(error_of<FingerprintArgs>({{"audio", 5}}), "audio: expected a URI string, got number");
  EXPECT_EQ(error_of<FingerprintArgs>({{"audio", "ftp://h/x"}})
                .rfind("audio: unsupported URI scheme 'ftp'", 0),
            0u);
  EXPECT_EQ(error_of<FingerprintArgs>({{"audio", "file:///a"}, {"raw", "yes"}}).rfind("raw:", 0),
            0u);
  EXPECT_EQ(error_of<FingerprintArgs>({{"audio", "file:///a"}, {"length_seconds", -1}})
                .rfind("length_seconds:", 0),
            0u);
  EXPECT_EQ(error_of<FingerprintArgs>({{"audio", "file:///a"}, {"record_id", json::array()}})
                .rfind("record_id:", 0),
            0u);
  EXPECT_EQ(error_of<SeparateArgs>({{"audio", "file:///a"}, {"format", "mp3"}})
                .rfind("format: expected one of wav, flac", 0),
            0u);
  EXPECT_EQ(error_of<MetadataArgs>(json::array()).rfind("data: expected a JSON object", 0), 0u);
  EXPECT_EQ(error_of<RecordArgs>({{"record_type", "song"}}), "record_id: required");
  EXPECT_EQ(error_of<RecordArgs>({{"record_id", ""}}).rfind("record_id:", 0), 0u);
  EXPECT_EQ(error_of<RecordArgs>({{"record_id", 1}, {"audio", json::object()}})
                .rfind("audio: expected a URI string", 0),
            0u);
  EXPECT_EQ(error_of<RecordArgs>({{"record_id", 1}, {"metadata", {{"audio_url", 3}}}})
                .rfind("metadata.audio_url:", 0),
            0u);
  EXPECT_EQ(error_of<RecordArgs>({{"record_id", 1}, {"tasks", {"stems", "karaoke"}}})
                .rfind("tasks: unknown task 'karaoke'", 0),
            0u);
  EXPECT_EQ(error_of<RecordArgs>({{"record_id", 1}, {"metadata", "x"}})
                .rfind("metadata: expected an object", 0),
            0u);
}

TEST(JobArgsTest, RecordFindsItsAudio) {
  auto r = RecordArgs::from_json({{"record_id", "r1"},
                                  {"audio", "supabase://b/p.flac"},
                                  {"metadata", {{"audio_url", "https://ignored"}}}});
  EXPECT_EQ(r.audio, "supabase://b/p.flac") << "data.audio wins";
  r = RecordArgs::from_json({{"record_id", 1}, {"metadata", {{"audio_url", "https://h/a.mp3"}}}});
  EXPECT_EQ(r.audio, "https://h/a.mp3");
  r = RecordArgs::from_json({{"record_id", 1}, {"metadata", {{"storage_path", "u/1.flac"}}}});
  EXPECT_EQ(r.audio, "");
  EXPECT_EQ(r.storage_path, "u/1.flac");
  r = RecordArgs::from_json({{"record_id", 1}, {"record_type", "song"}});
  EXPECT_TRUE(r.audio.empty() && r.storage_path.empty());
  EXPECT_TRUE(r.metadata_task && r.fingerprint_task && r.stems_task) << "all tasks by default";
  r = RecordArgs::from_json({{"record_id", 1}, {"tasks", {"fingerprint"}}});
  EXPECT_FALSE(r.metadata_task);
  EXPECT_TRUE(r.fingerprint_task);
  EXPECT_FALSE(r.stems_task);
}

TEST(JobArgsTest, NullMeansAbsent) {
  const auto a = SeparateArgs::from_json(
      {{"audio", "file:///a"}, {"record_id", nullptr}, {"model", nullptr}, {"format", nullptr}});
  EXPECT_TRUE(a.record_id.is_null());
  EXPECT_EQ(a.model, "");
  EXPECT_EQ(a.format, "flac");
}

}  // namespace
}  // namespace yw::worker
