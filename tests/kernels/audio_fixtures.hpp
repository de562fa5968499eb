#pragma once
// Test audio for the fingerprint and decoder tests: generated in the test (sox, ffmpeg, or
// written byte by byte here), never committed.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace yw::test {

// A fresh temporary directory (support/process.hpp's make_temp_dir), removed with everything in
// it when the object goes.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Content kinds the issue asks for.
enum class Content { chords, noise, speech, silence, near_silence };
const char* to_string(Content c);

// Writes `path` with sox: `seconds` of `content` at `rate` Hz, `channels`, 16-bit (the format
// follows the extension: .wav, .flac, .ogg, ...). Throws std::runtime_error when sox fails.
void make_audio(const std::filesystem::path& path, Content content, int rate, int channels,
                double seconds);

// Converts with ffmpeg (codec options in `args`, e.g. {"-c:a", "libmp3lame", "-b:a", "192k"}).
void ffmpeg_convert(const std::filesystem::path& in, const std::filesystem::path& out,
                    const std::vector<std::string>& args);

// A canonical 16-bit PCM WAV written byte by byte (for malformed-header variants).
std::vector<unsigned char> wav_bytes(int rate, int channels, const std::vector<std::int16_t>& pcm);
void write_bytes(const std::filesystem::path& path, const std::vector<unsigned char>& bytes);

// Debian fpcalc's output for one file. fpcalc exits 3 after reading to EOF yet prints a complete
// result (chromaprint.md §1.2), so -ignore-errors is passed and rc is not trusted on its own.
struct FpcalcResult {
  bool ok = false;
  std::string duration_line;  // "DURATION=…"
  std::string fingerprint;    // the FINGERPRINT value
  std::string err;
};
FpcalcResult run_fpcalc(const std::filesystem::path& file, const std::vector<std::string>& args);
std::vector<std::uint32_t> parse_items(const std::string& csv);

}  // namespace yw::test
