// Audio input front door: file checks that both backends share, libsndfile, then FFmpeg.
#include "yw/kernels/audio.hpp"

#include <sndfile.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>

#include "audio_internal.hpp"
#include "yw/common/error.hpp"

namespace yw {
namespace audio_detail {
namespace {

std::uint32_t le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint16_t le16(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

// libsndfile quietly shortens a WAV whose header promises more data than the file holds, and
// reports zero-channel or absurd headers only as "unknown format". Walking the RIFF chunks first
// lets the error say what is wrong.
void check_riff(const std::filesystem::path& path, std::ifstream& in, std::uintmax_t size,
                bool allow_short_data) {
  std::array<unsigned char, 12> head{};
  in.read(reinterpret_cast<char*>(head.data()), head.size());
  if (in.gcount() < 12 || std::memcmp(head.data(), "RIFF", 4) != 0 ||
      std::memcmp(head.data() + 8, "WAVE", 4) != 0)
    return;
  std::uintmax_t offset = 12;
  bool have_fmt = false;
  while (true) {
    std::array<unsigned char, 8> chunk{};
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(reinterpret_cast<char*>(chunk.data()), chunk.size());
    if (in.gcount() < 8)
      YW_THROW_INPUT("{}: truncated WAV: no 'data' chunk before the end of the file ({} bytes)",
                     path.string(), size);
    const std::string id(reinterpret_cast<const char*>(chunk.data()), 4);
    const std::uint32_t chunk_size = le32(chunk.data() + 4);
    const std::uintmax_t body = offset + 8;
    if (id == "fmt ") {
      if (chunk_size < 16 || body + 16 > size)
        YW_THROW_INPUT("{}: truncated WAV: 'fmt ' chunk of {} bytes", path.string(), chunk_size);
      std::array<unsigned char, 16> fmt{};
      in.read(reinterpret_cast<char*>(fmt.data()), fmt.size());
      const unsigned channels = le16(fmt.data() + 2);
      const std::uint32_t rate = le32(fmt.data() + 4);
      const unsigned block_align = le16(fmt.data() + 12);
      const unsigned bits = le16(fmt.data() + 14);
      if (channels == 0) YW_THROW_INPUT("{}: WAV header declares zero channels", path.string());
      if (channels > static_cast<unsigned>(kMaxChannels))
        YW_THROW_INPUT("{}: WAV header declares {} channels (absurd; at most {} are accepted)",
                       path.string(), channels, kMaxChannels);
      if (rate == 0 || rate > static_cast<std::uint32_t>(kMaxSampleRate))
        YW_THROW_INPUT("{}: WAV header declares a sample rate of {} Hz (absurd)", path.string(),
                       rate);
      if (block_align == 0 || bits > 64)
        YW_THROW_INPUT("{}: WAV header declares {}-bit samples in {}-byte blocks (absurd)",
                       path.string(), bits, block_align);
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt)
        YW_THROW_INPUT("{}: malformed WAV: 'data' chunk before the 'fmt ' chunk", path.string());
      // 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
      if (!allow_short_data && chunk_size != 0 && chunk_size != 0xFFFFFFFFu &&
          body + chunk_size > size)
        YW_THROW_INPUT(
            "{}: truncated WAV: the header promises {} bytes of samples but the file holds {}",
            path.string(), chunk_size, size - std::min(size, body));
      return;
    } else if (body + chunk_size > size) {
      YW_THROW_INPUT("{}: malformed WAV: chunk '{}' claims {} bytes, more than the file holds",
                     path.string(), id, chunk_size);
    }
    offset = body + chunk_size + (chunk_size & 1u);
  }
}

// A web page or error text saved under an audio name is the commonest bad upload; saying so is
// clearer than two decoders' guesses (and keeps libmpg123's resync chatter off stderr).
void check_not_text(const std::filesystem::path& path, std::ifstream& in) {
  std::array<char, 512> head{};
  in.read(head.data(), head.size());
  const auto n = static_cast<std::size_t>(in.gcount());
  in.clear();
  in.seekg(0);
  if (n == 0) return;
  const auto printable = [](unsigned char c) {
    return (c >= 0x20 && c < 0x7F) || (c >= 0x09 && c <= 0x0D);
  };
  std::size_t first = 0;
  while (first < n && std::isspace(static_cast<unsigned char>(head[first])) != 0)
    ++first;
  const bool all_text =
      std::all_of(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(n),
                  [&](char c) { return printable(static_cast<unsigned char>(c)); });
  if (!all_text) return;
  std::string start(head.data() + first, std::min<std::size_t>(n - first, 40));
  std::replace_if(
      start.begin(), start.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  const bool markup = first < n && head[first] == '<';
  YW_THROW_INPUT("{}: not a supported audio file: it is {} (starts with \"{}\")", path.string(),
                 markup ? "an HTML/XML document" : "text", start);
}

}  // namespace
}  // namespace audio_detail

void audio_detail::check_input_file(const std::filesystem::path& path, bool allow_short_data) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    YW_THROW_INPUT("{}: cannot open: {}", path.string(),
                   ec ? ec.message() : std::string("no such file"));
  if (std::filesystem::is_directory(status))
    YW_THROW_INPUT("{}: cannot open: it is a directory", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) YW_THROW_INPUT("{}: cannot open: {}", path.string(), std::strerror(errno));
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size == 0) YW_THROW_INPUT("{}: empty file (0 bytes)", path.string());
  audio_detail::check_not_text(path, in);
  if (!ec) audio_detail::check_riff(path, in, size, allow_short_data);
}

std::unique_ptr<AudioReader> AudioReader::open(const std::filesystem::path& path) {
  audio_detail::check_input_file(path, false);
  std::string why;
  auto reader = audio_detail::open_sndfile(path, why);
  if (!reader) return audio_detail::open_ffmpeg(path, why);
  // Lossy streams are decoded by FFmpeg's own decoders, as fpcalc decodes them: libsndfile's
  // Opus loses 20 ms blocks and its Vorbis differs from FFmpeg's by 1 LSB in a third of the
  // samples (real-world.md §1). libsndfile stays the fallback for a lossy file FFmpeg refuses.
  if (reader->info().bits_per_sample == 0) {
    try {
      return audio_detail::open_ffmpeg(path, {});
    } catch (const InputError&) {
      return reader;
    }
  }
  return reader;
}

AudioInfo probe_audio(const std::filesystem::path& path) {
  return AudioReader::open(path)->info();
}

DecodedAudio decode_audio(const std::filesystem::path& path, double max_seconds) {
  auto reader = AudioReader::open(path);
  DecodedAudio out;
  out.info = reader->info();
  const auto channels = static_cast<std::size_t>(out.info.channels);
  const std::int64_t limit =
      max_seconds > 0 ? static_cast<std::int64_t>(std::llround(max_seconds * out.info.sample_rate))
                      : -1;
  if (out.info.frames > 0) {
    const std::int64_t expect = limit >= 0 ? std::min(limit, out.info.frames) : out.info.frames;
    out.samples.reserve(static_cast<std::size_t>(expect) * channels);
  }
  constexpr std::size_t kBlock = 16384;
  std::int64_t have = 0;
  while (limit < 0 || have < limit) {
    std::size_t want = kBlock;
    if (limit >= 0) want = std::min<std::size_t>(want, static_cast<std::size_t>(limit - have));
    const std::size_t at = out.samples.size();
    out.samples.resize(at + want * channels);
    const std::size_t got = reader->read_float(out.samples.data() + at, want);
    out.samples.resize(at + got * channels);
    if (got == 0) break;
    have += static_cast<std::int64_t>(got);
  }
  return out;
}

}  // namespace yw
