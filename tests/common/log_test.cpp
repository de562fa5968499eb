#include "yw/common/log.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace yw {
namespace {

class SinkCapture {
 public:
  SinkCapture() { mem_ = open_memstream(&buf_, &size_); }
  ~SinkCapture() {
    if (mem_) std::fclose(mem_);
    std::free(buf_);
  }
  std::FILE* file() { return mem_; }
  std::string text() {
    std::fflush(mem_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* mem_ = nullptr;
};

TEST(LogTest, JsonSinkWritesOneParseableObjectPerLine) {
  SinkCapture cap;
  const auto sink = make_json_sink(cap.file());
  const LogFields fields = {field("job_id", "9f1c"), field("ms", 12), field("ok", true),
                            field("note", "quote \" and\nnewline")};
  sink(LogRecord{std::chrono::system_clock::now(), LogLevel::warn, "queue", "claim \"lost\"",
                 fields});
  const std::string text = cap.text();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one record, one line";
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["component"], "queue");
  EXPECT_EQ(j["msg"], "claim \"lost\"");
  EXPECT_EQ(j["job_id"], "9f1c");
  EXPECT_EQ(j["ms"], 12);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["note"], "quote \" and\nnewline");
  EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
}

TEST(LogTest, PrettySinkStartsWithLevelAndComponent) {
  SinkCapture cap;
  const auto sink = make_pretty_sink(cap.file(), false);
  sink(LogRecord{std::chrono::system_clock::now(),
                 LogLevel::info,
                 "worker",
                 "started",
                 {field("queue", "fingerprint_audio"), field("note", "has space")}});
  const std::string text = cap.text();
  EXPECT_NE(text.find(" INFO  worker: started"), std::string::npos) << text;
  EXPECT_NE(text.find("queue=fingerprint_audio"), std::string::npos) << text;
  EXPECT_NE(text.find("note=\"has space\""), std::string::npos) << text;
  EXPECT_EQ(text.find("\x1b["), std::string::npos) << "no colour when not asked";
}

TEST(LogTest, LevelFilterDropsLowerRecords) {
  SinkCapture cap;
  set_log_sink(make_json_sink(cap.file()));
  set_log_level(LogLevel::warn);
  log_info("test", "hidden {}", 1);
  log_warn("test", "shown {}", 2);
  set_log_level(LogLevel::info);
  set_log_sink(make_pretty_sink(stderr, false));
  const std::string text = cap.text();
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_NE(text.find("shown 2"), std::string::npos);
}

TEST(LogTest, JsonEscapeHandlesControlCharacters) {
  EXPECT_EQ(json_escape(std::string_view("a\x01z", 3)), "a\\u0001z");
  EXPECT_EQ(json_escape("tab\there"), "tab\\there");
}

}  // namespace
}  // namespace yw
