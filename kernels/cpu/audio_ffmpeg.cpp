// The FFmpeg backend (libavformat + libavcodec), two ways:
//  * FfmpegReader (yw::AudioReader): lossy codecs and what libsndfile cannot read, converted to
//    interleaved float/int16 here at full precision (float stays float, overs are kept in float
//    and clipped in int16, never wrapped).
//  * FpcalcDecoder: fpcalc's own front end, the same libraries called the way Debian fpcalc 1.5.1
//    calls them (request s16, the decoder's native format kept, libswresample with fpcalc's
//    options, no resampler flush at the end), so its samples are fpcalc's by construction.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>

#include "audio_internal.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fpcalc_resample.hpp"

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

// What a decode error does to the stream.
enum class OnDecodeError {
  kSkipPacket,  // a damaged packet in the middle of a lossy stream is skipped, as players do
  kFpcalc,      // fpcalc 1.5.1's reader: the packet of a first error is dropped and decoding goes
                // on; a second error before any frame decodes ends the stream there
};

// One audio stream of a file: demuxer + decoder, frame by frame.
class FfmpegStream {
 public:
  FfmpegStream() = default;
  FfmpegStream(const FfmpegStream&) = delete;
  FfmpegStream& operator=(const FfmpegStream&) = delete;
  ~FfmpegStream() {
    av_frame_free(&frame_);
    av_packet_free(&packet_);
    avcodec_free_context(&codec_);
    avformat_close_input(&format_);
  }

  // Opens the best audio stream (av_find_best_stream, as fpcalc) and its decoder; with
  // `request_s16` the decoder is asked for s16 as fpcalc asks (most ignore it). Fills `info`.
  void open(const std::filesystem::path& path, const std::string& sndfile_why, bool request_s16,
            OnDecodeError on_error, AudioInfo& info) {
    path_ = path.string();
    on_error_ = on_error;
    const std::string& name = path_;
    int err = avformat_open_input(&format_, name.c_str(), nullptr, nullptr);
    if (err < 0) {
      if (sndfile_why.empty())
        YW_THROW_INPUT(
            "{}: not a supported audio file: FFmpeg does not recognise its contents ({})", name,
            av_error(err));
      YW_THROW_INPUT(
          "{}: not a supported audio file: neither libsndfile nor FFmpeg recognises its contents "
          "(FFmpeg: {}; libsndfile: {})",
          name, av_error(err), sndfile_why);
    }
    err = avformat_find_stream_info(format_, nullptr);
    if (err < 0) YW_THROW_INPUT("{}: cannot read stream info: {}", name, av_error(err));
    const AVCodec* decoder = nullptr;
    stream_ = av_find_best_stream(format_, AVMEDIA_TYPE_AUDIO, -1, -1, &decoder, 0);
    if (stream_ == AVERROR_DECODER_NOT_FOUND) {
      const int any = av_find_best_stream(format_, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
      const char* codec =
          any >= 0 ? avcodec_get_name(format_->streams[any]->codecpar->codec_id) : "unknown";
      YW_THROW_INPUT("{}: its audio codec '{}' has no decoder in this FFmpeg build", name, codec);
    }
    if (stream_ < 0 || decoder == nullptr)
      YW_THROW_INPUT("{}: no decodable audio stream (container '{}')", name,
                     format_->iformat->name);
    const AVStream* st = format_->streams[stream_];
    const int channels = st->codecpar->ch_layout.nb_channels;
    const int rate = st->codecpar->sample_rate;
    if (channels <= 0 || channels > kMaxChannels)
      YW_THROW_INPUT("{}: audio stream declares {} channels", name, channels);
    if (rate <= 0 || rate > kMaxSampleRate)
      YW_THROW_INPUT("{}: audio stream declares a sample rate of {} Hz", name, rate);
    codec_ = avcodec_alloc_context3(decoder);
    if (codec_ == nullptr) YW_THROW("{}: out of memory", name);
    if (request_s16) codec_->request_sample_fmt = AV_SAMPLE_FMT_S16;
    err = avcodec_parameters_to_context(codec_, st->codecpar);
    if (err < 0) YW_THROW_INPUT("{}: cannot read the stream parameters: {}", name, av_error(err));
    err = avcodec_open2(codec_, decoder, nullptr);
    if (err < 0)
      YW_THROW_INPUT("{}: cannot open the {} decoder: {}", name, decoder->name, av_error(err));
    packet_ = av_packet_alloc();
    frame_ = av_frame_alloc();
    if (packet_ == nullptr || frame_ == nullptr) YW_THROW("{}: out of memory", name);

    std::string container = format_->iformat->name;
    if (container.rfind("mov,", 0) == 0) container = "mp4";
    container = container.substr(0, container.find(','));
    info.backend = "ffmpeg";
    info.container = container;
    info.codec = avcodec_get_name(st->codecpar->codec_id);
    info.sample_rate = rate;
    info.channels = channels;
    const AVCodecDescriptor* desc = avcodec_descriptor_get(st->codecpar->codec_id);
    const bool lossless = desc != nullptr && (desc->props & AV_CODEC_PROP_LOSSLESS) != 0;
    if (lossless) {
      info.bits_per_sample = st->codecpar->bits_per_raw_sample > 0
                                 ? st->codecpar->bits_per_raw_sample
                                 : st->codecpar->bits_per_coded_sample;
    }
    if (st->duration > 0 && st->duration != AV_NOPTS_VALUE) {
      info.frames = av_rescale_q(st->duration, st->time_base, AVRational{1, rate});
      info.duration_seconds = static_cast<double>(st->duration) * av_q2d(st->time_base);
    }
    if (format_->duration > 0 && format_->duration != AV_NOPTS_VALUE)
      info.duration_seconds = static_cast<double>(format_->duration) / AV_TIME_BASE;
    if (format_->bit_rate > 0) info.bitrate_kbps = static_cast<double>(format_->bit_rate) / 1000.0;
  }

  // Makes frame() hold the next decoded frame; false at the end of the stream (or, with
  // OnDecodeError::kFpcalc, at a second decode error in a row: stop_reason() then says which).
  bool next_frame() {
    while (true) {
      int err = avcodec_receive_frame(codec_, frame_);
      if (err == 0) {
        last_error_ = 0;
        if (frame_->nb_samples > 0) return true;
        continue;
      }
      if (err == AVERROR_EOF) return false;
      if (err != AVERROR(EAGAIN)) {
        if (on_error_ == OnDecodeError::kFpcalc) {
          ++errors_;
          if (last_error_ != 0) return stop(err);
          last_error_ = err;
          continue;
        }
        YW_THROW_INPUT("{}: cannot decode: {}", path_, av_error(err));
      }
      if (flushed_) return false;
      err = av_read_frame(format_, packet_);
      if (err == AVERROR_EOF) {
        avcodec_send_packet(codec_, nullptr);  // drains the decoder's delayed frames
        flushed_ = true;
        continue;
      }
      if (err < 0) {
        if (on_error_ == OnDecodeError::kFpcalc) return stop(err);
        YW_THROW_INPUT("{}: cannot read: {}", path_, av_error(err));
      }
      if (packet_->stream_index == stream_) {
        err = avcodec_send_packet(codec_, packet_);
        if (err < 0 && err != AVERROR(EAGAIN)) {
          av_packet_unref(packet_);
          if (on_error_ == OnDecodeError::kFpcalc) {
            ++errors_;
            if (last_error_ != 0) return stop(err);
            last_error_ = err;
            continue;
          }
          if (err != AVERROR_INVALIDDATA)
            YW_THROW_INPUT("{}: cannot decode: {}", path_, av_error(err));
        }
      }
      av_packet_unref(packet_);
    }
  }

  const AVFrame* frame() const noexcept { return frame_; }
  const AVCodecContext* codec() const noexcept { return codec_; }
  const AVStream* stream() const noexcept { return format_->streams[stream_]; }
  const AVFormatContext* format() const noexcept { return format_; }
  const std::string& path() const noexcept { return path_; }
  const std::string& stop_reason() const noexcept { return stop_reason_; }
  int errors() const noexcept { return errors_; }

 private:
  bool stop(int err) {
    stop_reason_ = av_error(err);
    flushed_ = true;
    return false;
  }

  std::string path_;
  OnDecodeError on_error_ = OnDecodeError::kSkipPacket;
  AVFormatContext* format_ = nullptr;
  AVCodecContext* codec_ = nullptr;
  AVPacket* packet_ = nullptr;
  AVFrame* frame_ = nullptr;
  int stream_ = -1;
  bool flushed_ = false;
  int last_error_ = 0;
  int errors_ = 0;
  std::string stop_reason_;
};

class FfmpegReader final : public AudioReader {
 public:
  explicit FfmpegReader(const std::filesystem::path& path) : AudioReader(path) {}

  void open(const std::string& sndfile_why) {
    stream_.open(path_, sndfile_why, false, OnDecodeError::kSkipPacket, info_);
  }

  std::size_t read_float(float* out, std::size_t max_frames) override {
    return read(out, max_frames);
  }
  std::size_t read_int16(std::int16_t* out, std::size_t max_frames) override {
    return read(out, max_frames);
  }

 private:
  template <typename T>
  std::size_t read(T* out, std::size_t max_frames) {
    std::size_t done = 0;
    const int channels = info_.channels;
    while (done < max_frames) {
      if (pos_ >= avail_) {
        if (!stream_.next_frame()) break;
        pos_ = 0;
        avail_ = stream_.frame()->nb_samples;
      }
      const AVFrame* frame = stream_.frame();
      if (frame->ch_layout.nb_channels != channels)
        YW_THROW_INPUT("{}: channel count changed mid-stream ({} -> {})", path_.string(), channels,
                       frame->ch_layout.nb_channels);
      const int n = static_cast<int>(
          std::min<std::size_t>(max_frames - done, static_cast<std::size_t>(avail_ - pos_)));
      copy_any(frame, channels, pos_, n, out + done * static_cast<std::size_t>(channels));
      pos_ += n;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  FfmpegStream stream_;
  int pos_ = 0;
  int avail_ = 0;
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

namespace yw {

// Debian fpcalc 1.5.1's reader (src/audio/ffmpeg_audio_reader.h with Debian's FFmpeg 5 port), step
// by step: the decoder's sample format at open decides whether libswresample is used at all
// (s16 mono 11025 Hz passes through); swr gets fpcalc's "compatible mode" options and the
// codec's channel layout (the default layout for the channel count when the codec has none); the
// output buffer holds max(8192, largest frame so far) samples, whatever swr cannot fit stays in
// swr; at the end of the stream Debian's reader fails ("End of file") before it flushes swr, so
// the resampler's tail is never emitted (measured: the shortest 44.1 kHz stereo input that gives
// one item is 120,161 frames, which is the unflushed count).
struct FpcalcDecoder::Impl {
  audio_detail::FfmpegStream stream;
  AudioInfo info;
  double duration = 0.0;
  SwrContext* swr = nullptr;
  int in_format = AV_SAMPLE_FMT_NONE;
  int in_channels = 0;
  int in_rate = 0;
  int capacity = 0;  // fpcalc's convert buffer, in output samples
  std::vector<std::int16_t> buffer;

  ~Impl() {
    swr_free(&swr);
    av_frame_free(&held);
  }

  void open(const std::filesystem::path& path) {
    audio_detail::quiet_ffmpeg();
    stream.open(path, {}, true, audio_detail::OnDecodeError::kFpcalc, info);
    const AVCodecContext* c = stream.codec();
    in_format = c->sample_fmt;
    in_channels = c->ch_layout.nb_channels;
    in_rate = c->sample_rate;
    // fpcalc's GetDuration: the stream's duration in integer milliseconds, else the container's.
    const AVStream* st = stream.stream();
    long long ms = -1;
    if (st->duration != AV_NOPTS_VALUE)
      ms = static_cast<int>(1000LL * st->time_base.num * st->duration / st->time_base.den);
    else if (stream.format()->duration != AV_NOPTS_VALUE)
      ms = static_cast<int>(1000LL * stream.format()->duration / AV_TIME_BASE);
    duration = ms < 0 ? 0.0 : static_cast<double>(ms) / 1000.0;

    if (in_format == AV_SAMPLE_FMT_S16 && in_channels == 1 && in_rate == kFpcalcSampleRate) return;
    if (in_format == AV_SAMPLE_FMT_NONE)
      YW_THROW_INPUT("{}: the {} decoder announces no sample format", stream.path(), info.codec);
    AVChannelLayout in_layout{};
    if (c->ch_layout.order == AV_CHANNEL_ORDER_NATIVE && c->ch_layout.u.mask != 0)
      av_channel_layout_from_mask(&in_layout, c->ch_layout.u.mask);
    else
      av_channel_layout_default(&in_layout, in_channels);
    AVChannelLayout out_layout{};
    av_channel_layout_default(&out_layout, 1);
    int err =
        swr_alloc_set_opts2(&swr, &out_layout, AV_SAMPLE_FMT_S16, kFpcalcSampleRate, &in_layout,
                            static_cast<AVSampleFormat>(in_format), in_rate, 0, nullptr);
    av_channel_layout_uninit(&in_layout);
    av_channel_layout_uninit(&out_layout);
    if (err < 0 || swr == nullptr)
      YW_THROW_INPUT("{}: libswresample cannot convert this stream: {}", stream.path(),
                     audio_detail::av_error(err));
    // fpcalc's SetCompatibleMode().
    av_opt_set_int(swr, "resampler", SWR_ENGINE_SWR, 0);
    av_opt_set_int(swr, "filter_size", 16, 0);
    av_opt_set_int(swr, "phase_shift", 8, 0);
    av_opt_set_int(swr, "linear_interp", 1, 0);
    av_opt_set_double(swr, "cutoff", 0.8, 0);
    err = swr_init(swr);
    if (err < 0)
      YW_THROW_INPUT("{}: libswresample cannot convert this stream: {}", stream.path(),
                     audio_detail::av_error(err));
  }

  // Each decoded frame is held until the next decode: fpcalc loses the frame decoded just before
  // a decode error (measured on FLAC files cut inside a frame: with the frame it has one item
  // more than fpcalc; without it the output is fpcalc's). Debian's FFmpeg 5 port of the reader
  // that does this is not public here; the rule is what fpcalc was seen to do.
  AVFrame* held = nullptr;
  int held_errors = 0;  // stream.errors() when `held` was decoded
  bool read(std::vector<std::int16_t>& out) {
    if (held == nullptr) held = av_frame_alloc();
    const bool more = stream.next_frame();
    const bool emit = held->nb_samples > 0 && stream.errors() == held_errors;
    if (emit) convert(held, out);
    av_frame_unref(held);
    if (!more) return emit;
    av_frame_ref(held, stream.frame());
    held_errors = stream.errors();
    return true;
  }
  void convert(const AVFrame* f, std::vector<std::int16_t>& out) {
    if (f->format != in_format || f->ch_layout.nb_channels != in_channels ||
        f->sample_rate != in_rate)
      YW_THROW_INPUT("{}: the stream's format changed mid-stream ({} Hz, {} channels)",
                     stream.path(), f->sample_rate, f->ch_layout.nb_channels);
    if (swr == nullptr) {
      const auto* p = reinterpret_cast<const std::int16_t*>(f->extended_data[0]);
      out.insert(out.end(), p, p + f->nb_samples);
      return;
    }
    if (f->nb_samples > capacity) {
      capacity = std::max(1024 * 8, f->nb_samples);
      buffer.resize(static_cast<std::size_t>(capacity));
    }
    auto* dst = reinterpret_cast<std::uint8_t*>(buffer.data());
    const int n = swr_convert(swr, &dst, capacity,
                              const_cast<const std::uint8_t**>(f->extended_data), f->nb_samples);
    if (n < 0)
      YW_THROW_INPUT("{}: libswresample failed: {}", stream.path(), audio_detail::av_error(n));
    out.insert(out.end(), buffer.begin(), buffer.begin() + n);
  }
};

FpcalcDecoder::FpcalcDecoder(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  audio_detail::check_input_file(path, true);
  impl_->open(path);
}
FpcalcDecoder::~FpcalcDecoder() = default;

const AudioInfo& FpcalcDecoder::info() const noexcept {
  return impl_->info;
}
double FpcalcDecoder::duration_seconds() const noexcept {
  return impl_->duration;
}
bool FpcalcDecoder::read(std::vector<std::int16_t>& out) {
  return impl_->read(out);
}
const std::string& FpcalcDecoder::stop_reason() const noexcept {
  return impl_->stream.stop_reason();
}

}  // namespace yw
