// The libsndfile backend: WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 and the other formats it knows.
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "audio_internal.hpp"
#include "yw/common/error.hpp"

namespace yw::audio_detail {
namespace {

std::string container_name(int major) {
  switch (major) {
    case SF_FORMAT_WAV:
    case SF_FORMAT_WAVEX:
    case SF_FORMAT_RF64:
      return "wav";
    case SF_FORMAT_AIFF:
      return "aiff";
    case SF_FORMAT_AU:
      return "au";
    case SF_FORMAT_W64:
      return "w64";
    case SF_FORMAT_CAF:
      return "caf";
    case SF_FORMAT_FLAC:
      return "flac";
    case SF_FORMAT_OGG:
      return "ogg";
    case SF_FORMAT_MPEG:
      return "mp3";
    case SF_FORMAT_RAW:
      return "raw";
    default:
      return "other";
  }
}

// FFmpeg's codec names, so both backends describe files the same way. Returns the stored bit
// depth through `bits` (0 for lossy codecs).
std::string codec_name(int major, int subtype, int& bits) {
  const bool big_endian = major == SF_FORMAT_AIFF || major == SF_FORMAT_AU;
  const char* e = big_endian ? "be" : "le";
  const bool flac = major == SF_FORMAT_FLAC;
  bits = 0;
  switch (subtype) {
    case SF_FORMAT_PCM_S8:
      bits = 8;
      return flac ? "flac" : "pcm_s8";
    case SF_FORMAT_PCM_U8:
      bits = 8;
      return "pcm_u8";
    case SF_FORMAT_PCM_16:
      bits = 16;
      return flac ? "flac" : std::string("pcm_s16") + e;
    case SF_FORMAT_PCM_24:
      bits = 24;
      return flac ? "flac" : std::string("pcm_s24") + e;
    case SF_FORMAT_PCM_32:
      bits = 32;
      return std::string("pcm_s32") + e;
    case SF_FORMAT_FLOAT:
      bits = 32;
      return std::string("pcm_f32") + e;
    case SF_FORMAT_DOUBLE:
      bits = 64;
      return std::string("pcm_f64") + e;
    case SF_FORMAT_ULAW:
      bits = 8;
      return "pcm_mulaw";
    case SF_FORMAT_ALAW:
      bits = 8;
      return "pcm_alaw";
    case SF_FORMAT_VORBIS:
      return "vorbis";
    case SF_FORMAT_OPUS:
      return "opus";
    case SF_FORMAT_MPEG_LAYER_I:
      return "mp1";
    case SF_FORMAT_MPEG_LAYER_II:
      return "mp2";
    case SF_FORMAT_MPEG_LAYER_III:
      return "mp3";
    case SF_FORMAT_ALAC_16:
      bits = 16;
      return "alac";
    case SF_FORMAT_ALAC_20:
      bits = 20;
      return "alac";
    case SF_FORMAT_ALAC_24:
      bits = 24;
      return "alac";
    case SF_FORMAT_ALAC_32:
      bits = 32;
      return "alac";
    default:
      return "unknown";
  }
}

class SndfileReader final : public AudioReader {
 public:
  SndfileReader(const std::filesystem::path& path, SNDFILE* file, const SF_INFO& sf_info)
      : AudioReader(path), file_(file) {
    const int major = sf_info.format & SF_FORMAT_TYPEMASK;
    const int subtype = sf_info.format & SF_FORMAT_SUBMASK;
    float_source_ = subtype == SF_FORMAT_FLOAT || subtype == SF_FORMAT_DOUBLE;
    info_.backend = "sndfile";
    info_.container = container_name(major);
    info_.codec = codec_name(major, subtype, info_.bits_per_sample);
    info_.sample_rate = sf_info.samplerate;
    info_.channels = sf_info.channels;
    info_.frames = sf_info.frames >= 0 ? static_cast<std::int64_t>(sf_info.frames) : -1;
    if (info_.frames >= 0)
      info_.duration_seconds = static_cast<double>(info_.frames) / info_.sample_rate;
    if (info_.bits_per_sample == 0) {
      const double container = ffmpeg_container_duration(path);
      if (container > 0) info_.duration_seconds = container;
    }
    const bool pcm = info_.codec.rfind("pcm_", 0) == 0;
    if (pcm) {
      info_.bitrate_kbps =
          static_cast<double>(info_.sample_rate) * info_.channels * info_.bits_per_sample / 1000.0;
    } else if (info_.duration_seconds > 0) {
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(path, ec);
      if (!ec)
        info_.bitrate_kbps = static_cast<double>(bytes) * 8.0 / info_.duration_seconds / 1000.0;
    }
  }
  ~SndfileReader() override { sf_close(file_); }

  std::size_t read_float(float* out, std::size_t max_frames) override {
    return check(sf_readf_float(file_, out, static_cast<sf_count_t>(max_frames)));
  }
  std::size_t read_int16(std::int16_t* out, std::size_t max_frames) override {
    if (!float_source_)
      return check(sf_readf_short(file_, out, static_cast<sf_count_t>(max_frames)));
    // libsndfile's own int16 reads of float data return only 0 and +-1 (or, with
    // SFC_SET_SCALE_FLOAT_INT_READ, scale by the file's peak): read float and saturate instead,
    // clip(lrintf(v * 32768)) as libswresample converts, so overs never wrap.
    const auto channels = static_cast<std::size_t>(info_.channels);
    scratch_.resize(max_frames * channels);
    const std::size_t got =
        check(sf_readf_float(file_, scratch_.data(), static_cast<sf_count_t>(max_frames)));
    for (std::size_t i = 0; i < got * channels; ++i) {
      const long v = std::lrintf(scratch_[i] * 32768.0f);
      out[i] = static_cast<std::int16_t>(std::clamp(v, -32768L, 32767L));
    }
    return got;
  }

 private:
  std::size_t check(sf_count_t got) {
    if (got <= 0) {
      const int err = sf_error(file_);
      if (err != SF_ERR_NO_ERROR)
        YW_THROW_INPUT("{}: cannot decode: {}", path_.string(), sf_error_number(err));
      return 0;
    }
    return static_cast<std::size_t>(got);
  }
  SNDFILE* file_;
  bool float_source_ = false;
  std::vector<float> scratch_;
};

}  // namespace

std::unique_ptr<AudioReader> open_sndfile(const std::filesystem::path& path, std::string& why) {
  SF_INFO sf_info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &sf_info);
  if (file == nullptr) {
    why = sf_strerror(nullptr);
    return nullptr;
  }
  const int major = sf_info.format & SF_FORMAT_TYPEMASK;
  if (major == SF_FORMAT_RAW) {  // never guessed: headerless data is not audio we can trust
    sf_close(file);
    why = "no audio header";
    return nullptr;
  }
  if (sf_info.channels <= 0 || sf_info.channels > kMaxChannels) {
    sf_close(file);
    YW_THROW_INPUT("{}: header declares {} channels (absurd)", path.string(), sf_info.channels);
  }
  if (sf_info.samplerate <= 0 || sf_info.samplerate > kMaxSampleRate) {
    sf_close(file);
    YW_THROW_INPUT("{}: header declares a sample rate of {} Hz (absurd)", path.string(),
                   sf_info.samplerate);
  }
  // Normalised float reads (int16 / 32768) are libsndfile's default; made explicit because the
  // contract in audio.hpp depends on it.
  sf_command(file, SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);

  return std::make_unique<SndfileReader>(path, file, sf_info);
}

}  // namespace yw::audio_detail
