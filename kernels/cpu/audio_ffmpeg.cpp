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

// Sample conversions: float in [-1, 1) (integers divided by their full scale) and int16 (wider
// integers rounded as libswresample does, float rounded and clipped).
inline void convert(std::uint8_t v, float& o) {
  o = (static_cast<int>(v) - 128) / 128.0f;
}
inline void convert(std::int16_t v, float& o) {
  o = v / 32768.0f;
}
inline void convert(std::int32_t v, float& o) {
  o = static_cast<float>(v / 2147483648.0);
}
inline void convert(std::int64_t v, float& o) {
  o = static_cast<float>(static_cast<double>(v) / 9223372036854775808.0);
}
inline void convert(float v, float& o) {
  o = v;
}
inline void convert(double v, float& o) {
  o = static_cast<float>(v);
}
inline void convert(std::uint8_t v, std::int16_t& o) {
  o = static_cast<std::int16_t>((static_cast<int>(v) - 128) * 256);
}
inline void convert(std::int16_t v, std::int16_t& o) {
  o = v;
}
inline void convert(std::int32_t v, std::int16_t& o) {
  o = static_cast<std::int16_t>(
      std::min<std::int64_t>((static_cast<std::int64_t>(v) + 0x8000) >> 16, 32767));
}
inline void convert(std::int64_t v, std::int16_t& o) {
  convert(static_cast<std::int32_t>(v >> 32), o);
}
inline void convert(float v, std::int16_t& o) {
  o = float_to_int16(v);
}
inline void convert(double v, std::int16_t& o) {
  o = float_to_int16(static_cast<float>(v));
}

// Copies frames [pos, pos + n) of a packed or planar frame of sample type S into interleaved `out`.
template <typename S, typename T>
void copy_frames(const AVFrame* frame, bool planar, int channels, int pos, int n, T* out) {
  const auto ch_count = static_cast<std::size_t>(channels);
  for (int ch = 0; ch < channels; ++ch) {
    const std::uint8_t* base = frame->extended_data[planar ? ch : 0];
    const std::size_t stride = planar ? sizeof(S) : sizeof(S) * ch_count;
    const std::uint8_t* p = base + static_cast<std::size_t>(pos) * stride +
                            (planar ? 0 : static_cast<std::size_t>(ch) * sizeof(S));
    T* o = out + ch;
    for (int i = 0; i < n; ++i) {
      S v;
      std::memcpy(&v, p + static_cast<std::size_t>(i) * stride, sizeof(S));
      convert(v, o[static_cast<std::size_t>(i) * ch_count]);
    }
  }
}

template <typename T>
void copy_any(const AVFrame* frame, int channels, int pos, int n, T* out) {
  const auto fmt = static_cast<AVSampleFormat>(frame->format);
  const bool planar = av_sample_fmt_is_planar(fmt) != 0;
  switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8:
      return copy_frames<std::uint8_t>(frame, planar, channels, pos, n, out);
    case AV_SAMPLE_FMT_S16:
      return copy_frames<std::int16_t>(frame, planar, channels, pos, n, out);
    case AV_SAMPLE_FMT_S32:
      return copy_frames<std::int32_t>(frame, planar, channels, pos, n, out);
    case AV_SAMPLE_FMT_S64:
      return copy_frames<std::int64_t>(frame, planar, channels, pos, n, out);
    case AV_SAMPLE_FMT_FLT:
      return copy_frames<float>(frame, planar, channels, pos, n, out);
    case AV_SAMPLE_FMT_DBL:
      return copy_frames<double>(frame, planar, channels, pos, n, out);
    default:
      YW_THROW_INPUT("unsupported decoded sample format {}", static_cast<int>(fmt));
  }
}

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
      YW_THROW_INPUT(
          "{}: not a supported audio file: neither libsndfile nor FFmpeg recognises its contents "
          "(FFmpeg: {}; libsndfile: {})",
          name, av_error(err), sndfile_why);
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
    return read(out, max_frames);
  }
  std::size_t read_int16(std::int16_t* out, std::size_t max_frames) override {
    return read(out, max_frames);
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

  template <typename T>
  std::size_t read(T* out, std::size_t max_frames) {
    std::size_t done = 0;
    const int channels = info_.channels;
    while (done < max_frames) {
      if (pos_ >= frame_->nb_samples && !refill()) break;
      if (frame_->ch_layout.nb_channels != channels)
        YW_THROW_INPUT("{}: channel count changed mid-stream ({} -> {})", path_.string(), channels,
                       frame_->ch_layout.nb_channels);
      const int n = static_cast<int>(std::min<std::size_t>(
          max_frames - done, static_cast<std::size_t>(frame_->nb_samples - pos_)));
      copy_any(frame_, channels, pos_, n, out + done * static_cast<std::size_t>(channels));
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
