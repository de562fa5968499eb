// The FFmpeg backend: what libsndfile cannot read (M4A/AAC, ALAC, WMA, ...), decoded with
// libavformat + libavcodec and converted to interleaved samples here (no libswresample).
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>

#include "audio_internal.hpp"
#include "yw/common/error.hpp"

namespace yw::audio_detail {
namespace {

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// Library code never writes to stderr (style.md habit 14); FFmpeg's own chatter is switched off.
void quiet_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

inline std::int16_t float_to_int16(float v) {
  const long r = std::lrintf(v * 32768.0f);
  return static_cast<std::int16_t>(std::clamp(r, -32768L, 32767L));
}

// One sample of any packed or planar FFmpeg format, as float in [-1, 1) or as int16.
struct SampleAt {
  AVSampleFormat fmt;
  const AVFrame* frame;
  int channels;
  bool planar;
  int bytes;

  const std::uint8_t* ptr(int index, int ch) const {
    if (planar) return frame->extended_data[ch] + static_cast<std::ptrdiff_t>(index) * bytes;
    return frame->extended_data[0] + (static_cast<std::ptrdiff_t>(index) * channels + ch) * bytes;
  }
  float as_float(int index, int ch) const {
    const std::uint8_t* p = ptr(index, ch);
    switch (av_get_packed_sample_fmt(fmt)) {
      case AV_SAMPLE_FMT_U8:
        return (static_cast<int>(*p) - 128) / 128.0f;
      case AV_SAMPLE_FMT_S16: {
        std::int16_t v;
        std::memcpy(&v, p, 2);
        return v / 32768.0f;
      }
      case AV_SAMPLE_FMT_S32: {
        std::int32_t v;
        std::memcpy(&v, p, 4);
        return static_cast<float>(v / 2147483648.0);
      }
      case AV_SAMPLE_FMT_S64: {
        std::int64_t v;
        std::memcpy(&v, p, 8);
        return static_cast<float>(static_cast<double>(v) / 9223372036854775808.0);
      }
      case AV_SAMPLE_FMT_FLT: {
        float v;
        std::memcpy(&v, p, 4);
        return v;
      }
      case AV_SAMPLE_FMT_DBL: {
        double v;
        std::memcpy(&v, p, 8);
        return static_cast<float>(v);
      }
      default:
        return 0.0f;
    }
  }
  std::int16_t as_int16(int index, int ch) const {
    const std::uint8_t* p = ptr(index, ch);
    switch (av_get_packed_sample_fmt(fmt)) {
      case AV_SAMPLE_FMT_U8:
        return static_cast<std::int16_t>((static_cast<int>(*p) - 128) * 256);
      case AV_SAMPLE_FMT_S16: {
        std::int16_t v;
        std::memcpy(&v, p, 2);
        return v;
      }
      case AV_SAMPLE_FMT_S32: {
        std::int32_t v;
        std::memcpy(&v, p, 4);
        // Rounded to nearest, as libswresample does for s32 -> s16.
        const std::int64_t r = (static_cast<std::int64_t>(v) + 0x8000) >> 16;
        return static_cast<std::int16_t>(std::min<std::int64_t>(r, 32767));
      }
      default:
        return float_to_int16(as_float(index, ch));
    }
  }
};

class FfmpegReader final : public AudioReader {
 public:
  explicit FfmpegReader(const std::filesystem::path& path) : AudioReader(path) {}
  ~FfmpegReader() override {
    av_frame_free(&frame_);
    av_packet_free(&packet_);
    avcodec_free_context(&codec_);
    avformat_close_input(&format_);
  }

  void open(const std::string& sndfile_why) {
    const std::string name = path_.string();
    int err = avformat_open_input(&format_, name.c_str(), nullptr, nullptr);
    if (err < 0)
      YW_THROW_INPUT("{}: not a supported audio file ({}; libsndfile: {})", name, av_error(err),
                     sndfile_why);
    err = avformat_find_stream_info(format_, nullptr);
    if (err < 0) YW_THROW_INPUT("{}: cannot read stream info: {}", name, av_error(err));
    const AVCodec* decoder = nullptr;
    stream_ = av_find_best_stream(format_, AVMEDIA_TYPE_AUDIO, -1, -1, &decoder, 0);
    if (stream_ < 0 || decoder == nullptr)
      YW_THROW_INPUT("{}: no decodable audio stream (container '{}')", name,
                     format_->iformat->name);
    const AVStream* st = format_->streams[stream_];
    codec_ = avcodec_alloc_context3(decoder);
    if (codec_ == nullptr) YW_THROW("{}: out of memory", name);
    avcodec_parameters_to_context(codec_, st->codecpar);
    err = avcodec_open2(codec_, decoder, nullptr);
    if (err < 0)
      YW_THROW_INPUT("{}: cannot open the {} decoder: {}", name, decoder->name, av_error(err));
    packet_ = av_packet_alloc();
    frame_ = av_frame_alloc();
    if (packet_ == nullptr || frame_ == nullptr) YW_THROW("{}: out of memory", name);

    const int channels = st->codecpar->ch_layout.nb_channels;
    const int rate = st->codecpar->sample_rate;
    if (channels <= 0 || channels > kMaxChannels)
      YW_THROW_INPUT("{}: audio stream declares {} channels", name, channels);
    if (rate <= 0 || rate > kMaxSampleRate)
      YW_THROW_INPUT("{}: audio stream declares a sample rate of {} Hz", name, rate);

    std::string container = format_->iformat->name;
    if (container.rfind("mov,", 0) == 0) container = "mp4";
    container = container.substr(0, container.find(','));
    info_.backend = "ffmpeg";
    info_.container = container;
    info_.codec = avcodec_get_name(st->codecpar->codec_id);
    info_.sample_rate = rate;
    info_.channels = channels;
    const AVCodecDescriptor* desc = avcodec_descriptor_get(st->codecpar->codec_id);
    const bool lossless = desc != nullptr && (desc->props & AV_CODEC_PROP_LOSSLESS) != 0;
    if (lossless) {
      info_.bits_per_sample = st->codecpar->bits_per_raw_sample > 0
                                  ? st->codecpar->bits_per_raw_sample
                                  : st->codecpar->bits_per_coded_sample;
    }
    if (st->duration > 0 && st->duration != AV_NOPTS_VALUE) {
      info_.frames = av_rescale_q(st->duration, st->time_base, AVRational{1, rate});
      info_.duration_seconds = static_cast<double>(st->duration) * av_q2d(st->time_base);
    } else if (format_->duration > 0 && format_->duration != AV_NOPTS_VALUE) {
      info_.duration_seconds = static_cast<double>(format_->duration) / AV_TIME_BASE;
    }
    if (format_->duration > 0 && format_->duration != AV_NOPTS_VALUE)
      info_.duration_seconds = static_cast<double>(format_->duration) / AV_TIME_BASE;
    if (format_->bit_rate > 0) info_.bitrate_kbps = static_cast<double>(format_->bit_rate) / 1000.0;
  }

  std::size_t read_float(float* out, std::size_t max_frames) override {
    return read(max_frames, [out](std::size_t at, const SampleAt& s, int i, int ch) {
      out[at] = s.as_float(i, ch);
    });
  }
  std::size_t read_int16(std::int16_t* out, std::size_t max_frames) override {
    return read(max_frames, [out](std::size_t at, const SampleAt& s, int i, int ch) {
      out[at] = s.as_int16(i, ch);
    });
  }

 private:
  // Makes frame_ hold undelivered samples; false at the end of the stream.
  bool refill() {
    while (true) {
      int err = avcodec_receive_frame(codec_, frame_);
      if (err == 0) {
        pos_ = 0;
        if (frame_->nb_samples > 0) return true;
        continue;
      }
      if (err == AVERROR_EOF) return false;
      if (err != AVERROR(EAGAIN))
        YW_THROW_INPUT("{}: cannot decode: {}", path_.string(), av_error(err));
      if (flushed_) return false;
      err = av_read_frame(format_, packet_);
      if (err == AVERROR_EOF) {
        avcodec_send_packet(codec_, nullptr);
        flushed_ = true;
        continue;
      }
      if (err < 0) YW_THROW_INPUT("{}: cannot read: {}", path_.string(), av_error(err));
      if (packet_->stream_index == stream_) {
        err = avcodec_send_packet(codec_, packet_);
        // A damaged packet in the middle of a lossy stream is skipped, as players do.
        if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_INVALIDDATA) {
          av_packet_unref(packet_);
          YW_THROW_INPUT("{}: cannot decode: {}", path_.string(), av_error(err));
        }
      }
      av_packet_unref(packet_);
    }
  }

  template <typename Put>
  std::size_t read(std::size_t max_frames, Put put) {
    std::size_t done = 0;
    const int channels = info_.channels;
    while (done < max_frames) {
      if (pos_ >= frame_->nb_samples && !refill()) break;
      if (frame_->ch_layout.nb_channels != channels)
        YW_THROW_INPUT("{}: channel count changed mid-stream ({} -> {})", path_.string(), channels,
                       frame_->ch_layout.nb_channels);
      const auto fmt = static_cast<AVSampleFormat>(frame_->format);
      const SampleAt s{fmt, frame_, channels, av_sample_fmt_is_planar(fmt) != 0,
                       av_get_bytes_per_sample(fmt)};
      const int n = static_cast<int>(std::min<std::size_t>(
          max_frames - done, static_cast<std::size_t>(frame_->nb_samples - pos_)));
      for (int i = 0; i < n; ++i)
        for (int ch = 0; ch < channels; ++ch)
          put((done + static_cast<std::size_t>(i)) * static_cast<std::size_t>(channels) +
                  static_cast<std::size_t>(ch),
              s, pos_ + i, ch);
      pos_ += n;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  AVFormatContext* format_ = nullptr;
  AVCodecContext* codec_ = nullptr;
  AVPacket* packet_ = nullptr;
  AVFrame* frame_ = nullptr;
  int stream_ = -1;
  int pos_ = 0;
  bool flushed_ = false;
};

}  // namespace

double ffmpeg_container_duration(const std::filesystem::path& path) {
  quiet_ffmpeg();
  AVFormatContext* format = nullptr;
  if (avformat_open_input(&format, path.c_str(), nullptr, nullptr) < 0) return -1.0;
  double seconds = -1.0;
  if (avformat_find_stream_info(format, nullptr) >= 0 && format->duration > 0 &&
      format->duration != AV_NOPTS_VALUE)
    seconds = static_cast<double>(format->duration) / AV_TIME_BASE;
  avformat_close_input(&format);
  return seconds;
}

std::unique_ptr<AudioReader> open_ffmpeg(const std::filesystem::path& path,
                                         const std::string& sndfile_why) {
  quiet_ffmpeg();
  auto reader = std::make_unique<FfmpegReader>(path);
  reader->open(sndfile_why);
  return reader;
}

}  // namespace yw::audio_detail
