// The `fingerprint_audio` handler (label `unit`): job data validation, output shape, and bad
// audio turning into a terminal failure whose message names the input and the problem.
#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/audio_fixtures.hpp"
#include "support/process.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/worker/handler.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class FingerprintHandler : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("yw-fp-handler");
    config_.input_roots = {dir_.string()};
    config_.output_uri = "file://" + (dir_ / "out").string();
    worker::register_fingerprint_handlers(registry_);
    ctx_.queue = "fingerprint_audio";
    ctx_.id = "job-1";
    ctx_.config = &config_;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  json run(const json& data) { return (*registry_.find("fingerprint_audio"))(data, ctx_); }
  // The handler must throw InputError (a terminal failure) with `needle` in its message.
  void expect_terminal(const json& data, const std::string& needle) {
    try {
      run(data);
      ADD_FAILURE() << data.dump() << ": succeeded";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  std::string uri(const std::string& name) const { return "file://" + (dir_ / name).string(); }

  fs::path dir_;
  worker::WorkerConfig config_;
  worker::HandlerRegistry registry_;
  worker::JobContext ctx_;
};

std::vector<std::int16_t> tone(std::size_t frames, int channels) {
  std::vector<std::int16_t> out(frames * static_cast<std::size_t>(channels));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::int16_t>(8000.0 * std::sin(static_cast<double>(i) * 0.031) +
                                       3000.0 * std::sin(static_cast<double>(i) * 0.0071));
  return out;
}

TEST_F(FingerprintHandler, OutputMatchesTheCoreAndDesignShape) {
  write_bytes(dir_ / "a.wav", wav_bytes(44100, 2, tone(44100 * 12, 2)));
  const json out = run({{"audio", uri("a.wav")}, {"record_id", 42}});
  const FileFingerprint fp = fingerprint_file(dir_ / "a.wav", 120);
  EXPECT_EQ(out.at("record_id"), 42);
  EXPECT_EQ(out.at("fingerprint"), fp.fingerprint);
  EXPECT_EQ(out.at("algorithm"), 2);
  EXPECT_DOUBLE_EQ(out.at("duration_seconds").get<double>(), 12.0);
  EXPECT_FALSE(out.contains("items"));
  const json raw =
      run({{"audio", uri("a.wav")}, {"record_id", "r-1"}, {"raw", true}, {"length_seconds", 5}});
  EXPECT_EQ(raw.at("record_id"), "r-1");
  EXPECT_EQ(raw.at("items").get<std::vector<std::uint32_t>>(),
            fingerprint_file(dir_ / "a.wav", 5).items);
  EXPECT_EQ(raw.at("items").size(), 19u);  // floor((55125 - 4096) / 1365) - 18
}

TEST_F(FingerprintHandler, BadJobDataNamesTheField) {
  expect_terminal(json::object(), "audio: required");
  expect_terminal({{"audio", 5}}, "audio: expected a URI string");
  expect_terminal({{"audio", uri("a.wav")}, {"length_seconds", -1}}, "length_seconds");
  expect_terminal({{"audio", uri("a.wav")}, {"length_seconds", "120"}}, "length_seconds");
  expect_terminal({{"audio", uri("a.wav")}, {"raw", "yes"}}, "raw: expected true or false");
  expect_terminal({{"audio", uri("a.wav")}, {"record_id", json::array()}}, "record_id");
}

TEST_F(FingerprintHandler, BadAudioFailsTheJobWithTheDecoderMessage) {
  write_bytes(dir_ / "empty.wav", {});
  expect_terminal({{"audio", uri("empty.wav")}}, "empty file");
  const std::string html = "<!doctype html><html><body>login</body></html>";
  write_bytes(dir_ / "page.mp3", std::vector<unsigned char>(html.begin(), html.end()));
  expect_terminal({{"audio", uri("page.mp3")}}, "not a supported audio file");
  auto zero = wav_bytes(44100, 1, tone(1000, 1));
  zero[22] = zero[23] = 0;
  write_bytes(dir_ / "zero.wav", zero);
  expect_terminal({{"audio", uri("zero.wav")}}, "zero channels");
  write_bytes(dir_ / "short.wav", wav_bytes(44100, 1, tone(44100 * 2, 1)));
  expect_terminal({{"audio", uri("short.wav")}}, "empty fingerprint");
}

}  // namespace
}  // namespace yw::test
