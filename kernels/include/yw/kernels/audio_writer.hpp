#pragma once
// Writes audio files (stems) through libsndfile.
#include <cstdint>
#include <filesystem>
#include <string_view>

namespace yw {

enum class AudioFileFormat {
  wav,   // 32-bit float WAV: lossless for any float signal, values beyond +-1 kept
  flac,  // 24-bit FLAC: values beyond +-1 are clipped
};

// Parses "wav" or "flac"; throws yw::InputError naming `field` otherwise.
AudioFileFormat parse_audio_file_format(std::string_view text, std::string_view field = "format");
std::string_view extension(AudioFileFormat format);  // "wav" or "flac"

// Writes `frames` frames of `channels` planar channels (channel c starts at
// planar + c * frames; host memory) at `sample_rate` Hz to `path`. The file appears complete or
// not at all: it is written under a temporary name in the same directory, then renamed.
// `bits`: 0 = the format's default above; 16 or 24 = integer PCM (values beyond +-1 clipped);
// 32 = float (WAV only). Throws yw::InputError for a depth the format cannot hold, yw::Error
// when the file cannot be written (the message names the path).
void write_audio_file(const std::filesystem::path& path, AudioFileFormat format,
                      const float* planar, int channels, int64_t frames, int sample_rate,
                      int bits = 0);

}  // namespace yw
