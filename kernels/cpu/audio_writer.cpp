#include "yw/kernels/audio_writer.hpp"

#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <system_error>
#include <vector>

#include "yw/common/error.hpp"

namespace yw {

AudioFileFormat parse_audio_file_format(std::string_view text, std::string_view field) {
  if (text == "wav") return AudioFileFormat::wav;
  if (text == "flac") return AudioFileFormat::flac;
  YW_THROW_INPUT("{}: must be 'wav' or 'flac', got '{}'", field, text);
}

std::string_view extension(AudioFileFormat format) {
  return format == AudioFileFormat::wav ? "wav" : "flac";
}

void write_audio_file(const std::filesystem::path& path, AudioFileFormat format,
                      const float* planar, int channels, int64_t frames, int sample_rate,
                      int bits) {
  YW_CHECK(channels >= 1 && sample_rate > 0 && frames >= 0,
           "write {}: bad audio shape ({} channels, {} Hz)", path.string(), channels, sample_rate);
  const bool wav = format == AudioFileFormat::wav;
  if (bits == 0) bits = wav ? 32 : 24;
  YW_CHECK_INPUT(bits == 16 || bits == 24 || (bits == 32 && wav),
                 "bit depth {} is not available for {} (16 or 24{})", bits, extension(format),
                 wav ? ", or 32-bit float" : "; float needs wav");
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path tmp =
      path.parent_path() /
      fmt::format(".{}.{}.{}.tmp", path.filename().string(), ::getpid(), counter++);

  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  const int subtype = bits == 32   ? SF_FORMAT_FLOAT
                      : bits == 24 ? SF_FORMAT_PCM_24
                                   : SF_FORMAT_PCM_16;
  info.format = (wav ? SF_FORMAT_WAV : SF_FORMAT_FLAC) | subtype;
  SNDFILE* sf = sf_open(tmp.c_str(), SFM_WRITE, &info);
  YW_CHECK(sf != nullptr, "write {}: {}", path.string(), sf_strerror(nullptr));
  if (bits != 32) sf_command(sf, SFC_SET_CLIPPING, nullptr, SF_TRUE);

  // Interleave a block at a time so the extra memory is bounded whatever the length.
  constexpr int64_t kBlock = 65536;
  std::vector<float> buf(static_cast<size_t>(kBlock * channels));
  bool ok = true;
  for (int64_t start = 0; start < frames && ok; start += kBlock) {
    const int64_t count = std::min(kBlock, frames - start);
    for (int64_t i = 0; i < count; ++i)
      for (int c = 0; c < channels; ++c)
        buf[static_cast<size_t>(i * channels + c)] = planar[c * frames + start + i];
    ok = sf_writef_float(sf, buf.data(), count) == count;
  }
  const std::string err = ok ? std::string() : sf_strerror(sf);
  const int close_rc = sf_close(sf);
  if (!ok || close_rc != 0) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    YW_THROW("write {}: {}", path.string(), ok ? "close failed" : err);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    YW_THROW("write {}: rename failed: {}", path.string(), why);
  }
}

}  // namespace yw
