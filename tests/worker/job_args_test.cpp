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

TEST(JobArgsTest, SeparationOptionsHaveDemucsMeaningAndClearErrors) {
  const auto d = SeparateArgs::from_json({{"audio", "file:///a"}});
  EXPECT_EQ(d.shifts, 0);
  EXPECT_EQ(d.overlap, 0.25);
  EXPECT_EQ(d.segment, 0.0);
  EXPECT_EQ(d.clip_mode, "rescale");
  EXPECT_EQ(d.bits, 0);
  EXPECT_FALSE(d.model_rate);
  const auto a = SeparateArgs::from_json({{"audio", "file:///a"},
                                          {"shifts", 2},
                                          {"seed", 42},
                                          {"overlap", 0.5},
                                          {"segment", 5.5},
                                          {"clip_mode", "clamp"},
                                          {"format", "wav"},
                                          {"float32", true},
                                          {"output_rate", "model"}});
  EXPECT_EQ(a.shifts, 2);
  EXPECT_EQ(a.seed, 42u);
  EXPECT_EQ(a.overlap, 0.5);
  EXPECT_EQ(a.segment, 5.5);
  EXPECT_EQ(a.clip_mode, "clamp");
  EXPECT_EQ(a.bits, 32);
  EXPECT_TRUE(a.model_rate);
  EXPECT_EQ(SeparateArgs::from_json({{"audio", "file:///a"}, {"bit_depth", 16}}).bits, 16);
  const std::pair<json, std::string> bad[] = {
      {{{"shifts", 1.5}}, "shifts: expected a whole number"},
      {{{"shifts", 21}}, "shifts: expected a number from 0 to 20"},
      {{{"overlap", 1}}, "overlap: expected a number from 0 to 0.99"},
      {{{"segment", 0}}, "segment: expected a number from 0.1 to 600"},
      {{{"clip_mode", "tanh"}}, "clip_mode: expected one of rescale, clamp, none"},
      {{{"bit_depth", 20}}, "bit_depth: expected 16 or 24"},
      {{{"bit_depth", 16}, {"float32", true}, {"format", "wav"}}, "float32: cannot be combined"},
      {{{"float32", true}}, "float32: FLAC stores integer samples only"},
      {{{"output_rate", "48000"}}, "output_rate: expected one of input, model"},
  };
  for (const auto& [fields, words] : bad) {
    json data = fields;
    data["audio"] = "file:///a";
    EXPECT_EQ(error_of<SeparateArgs>(data).rfind(words, 0), 0u)
        << data.dump() << ": " << error_of<SeparateArgs>(data);
  }
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
