// One-pass metadata analysis: SHA-256 (OpenSSL EVP), tags (TagLib), loudness (libebur128) and
// waveform peaks, over the project's streaming decoder (yw::AudioReader).
#include "yw/worker/metadata.hpp"

#include <ebur128.h>
#include <openssl/evp.h>
#include <taglib/fileref.h>
#include <taglib/flacfile.h>
#include <taglib/id3v2tag.h>
#include <taglib/mp4file.h>
#include <taglib/mp4tag.h>
#include <taglib/mpegfile.h>
#include <taglib/opusfile.h>
#include <taglib/tpropertymap.h>
#include <taglib/vorbisfile.h>
#include <taglib/wavfile.h>
#include <taglib/xiphcomment.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numbers>

#include <fmt/format.h>

#include "yw/common/error.hpp"

namespace yw::worker {

namespace fs = std::filesystem;

// ---- waveform ---------------------------------------------------------------------------------

WaveformBuilder::WaveformBuilder(const WaveformConfig& config, int sample_rate, int channels)
    : config_(config), channels_(channels) {
  YW_CHECK(config.samples_per_pixel > 0, "waveform: samples_per_pixel must be positive");
  YW_CHECK(config.bits == 8 || config.bits == 16, "waveform: bits must be 8 or 16");
  YW_CHECK(channels > 0, "waveform: channels must be positive");
  out_.sample_rate = sample_rate;
  out_.samples_per_pixel = config.samples_per_pixel;
  out_.bits = config.bits;
}

void WaveformBuilder::add(const float* interleaved, std::size_t frames) {
  const auto ch = static_cast<std::size_t>(channels_);
  std::size_t f = 0;
  while (f < frames) {
    // Min/max stay in float until the pixel closes: rounding to 16 bits is monotonic, so the
    // rounded extremes equal the extremes of the rounded samples.
    const std::size_t n =
        std::min(frames - f, static_cast<std::size_t>(config_.samples_per_pixel - in_pixel_));
    float lo = in_pixel_ == 0 ? std::numeric_limits<float>::max() : min_;
    float hi = in_pixel_ == 0 ? std::numeric_limits<float>::lowest() : max_;
    for (std::size_t i = f; i < f + n; ++i) {
      float sum = 0.0f;
      for (std::size_t c = 0; c < ch; ++c)
        sum += interleaved[i * ch + c];
      lo = std::min(lo, sum);
      hi = std::max(hi, sum);
    }
    min_ = lo;
    max_ = hi;
    in_pixel_ += static_cast<int>(n);
    f += n;
    if (in_pixel_ == config_.samples_per_pixel) flush_pixel();
  }
}

void WaveformBuilder::flush_pixel() {
  // audiowaveform works on 16-bit samples; the mono mix is the channel average. 8-bit values are
  // the 16-bit ones divided by 256, rounded down (-32768 -> -128, 32767 -> 127).
  const auto to_int = [this](float sum) {
    const double v = static_cast<double>(sum) / channels_ * 32768.0;
    const int s = static_cast<int>(std::clamp(std::lround(v), -32768L, 32767L));
    return config_.bits == 8 ? (s >> 8) : s;
  };
  out_.data.push_back(to_int(min_));
  out_.data.push_back(to_int(max_));
  ++out_.length;
  in_pixel_ = 0;
}

Waveform WaveformBuilder::finish() {
  if (in_pixel_ > 0) flush_pixel();
  return std::move(out_);
}

nlohmann::json to_json(const Waveform& w) {
  return nlohmann::json{{"version", w.version},
                        {"channels", w.channels},
                        {"sample_rate", w.sample_rate},
                        {"samples_per_pixel", w.samples_per_pixel},
                        {"bits", w.bits},
                        {"length", w.length},
                        {"data", w.data}};
}

// ---- SHA-256 ----------------------------------------------------------------------------------

std::string sha256_file(const fs::path& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!in) YW_THROW_INPUT("{}: cannot open for hashing", path.string());
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  YW_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1,
           "sha256: cannot initialise OpenSSL digest");
  std::array<unsigned char, 1 << 16> buf{};
  for (;;) {
    const size_t n = std::fread(buf.data(), 1, buf.size(), in.get());
    if (n > 0) YW_CHECK(EVP_DigestUpdate(ctx.get(), buf.data(), n) == 1, "sha256: update failed");
    if (n < buf.size()) {
      if (std::ferror(in.get()) != 0) YW_THROW_INPUT("{}: read error while hashing", path.string());
      break;
    }
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  YW_CHECK(EVP_DigestFinal_ex(ctx.get(), md.data(), &len) == 1, "sha256: final failed");
  std::string hex;
  for (unsigned int i = 0; i < len; ++i)
    hex += fmt::format("{:02x}", md[i]);
  return hex;
}

// ---- tags -------------------------------------------------------------------------------------

namespace {

std::optional<std::string> text(const TagLib::String& s) {
  if (s.isEmpty()) return std::nullopt;
  return s.to8Bit(true);
}

std::optional<std::string> property(const TagLib::PropertyMap& props, const char* key) {
  const auto it = props.find(key);
  if (it == props.end() || it->second.isEmpty()) return std::nullopt;
  return text(it->second.front());
}

// "3", "3/12", "2021-05-04": the leading number, if any and positive.
std::optional<int> leading_number(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  long v = 0;
  size_t i = 0;
  while (i < s->size() && (*s)[i] >= '0' && (*s)[i] <= '9' && v < 100000) {
    v = v * 10 + ((*s)[i] - '0');
    ++i;
  }
  if (i == 0 || v <= 0) return std::nullopt;
  return static_cast<int>(v);
}

bool id3v2_has_picture(TagLib::ID3v2::Tag* tag) {
  return tag != nullptr && !tag->frameListMap()["APIC"].isEmpty();
}

bool has_cover(TagLib::File* file) {
  if (auto* mp3 = dynamic_cast<TagLib::MPEG::File*>(file))
    return id3v2_has_picture(mp3->ID3v2Tag());
  if (auto* flac = dynamic_cast<TagLib::FLAC::File*>(file)) {
    if (!flac->pictureList().isEmpty()) return true;
    return flac->xiphComment() != nullptr && !flac->xiphComment()->pictureList().isEmpty();
  }
  if (auto* mp4 = dynamic_cast<TagLib::MP4::File*>(file)) {
    return mp4->tag() != nullptr && mp4->tag()->contains("covr") &&
           !mp4->tag()->item("covr").toCoverArtList().isEmpty();
  }
  if (auto* wav = dynamic_cast<TagLib::RIFF::WAV::File*>(file)) {
    return id3v2_has_picture(wav->ID3v2Tag());
  }
  // Ogg Vorbis/Opus: METADATA_BLOCK_PICTURE in the Xiph comment.
  if (auto* xiph = dynamic_cast<TagLib::Ogg::XiphComment*>(file->tag())) {
    return !xiph->pictureList().isEmpty() || xiph->contains("COVERART");
  }
  return false;
}

}  // namespace

AudioTags read_tags(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) YW_THROW_INPUT("{}: not a readable file", path.string());
  AudioTags tags;
  TagLib::FileRef ref(path.c_str(), /*readAudioProperties=*/false);
  if (ref.isNull() || ref.tag() == nullptr) return tags;  // a format TagLib does not know
  const TagLib::Tag* tag = ref.tag();
  const TagLib::PropertyMap props = ref.file()->properties();
  tags.title = text(tag->title());
  tags.artist = text(tag->artist());
  tags.album = text(tag->album());
  tags.genre = text(tag->genre());
  tags.album_artist = property(props, "ALBUMARTIST");
  tags.isrc = property(props, "ISRC");
  tags.track = leading_number(property(props, "TRACKNUMBER"));
  tags.disc = leading_number(property(props, "DISCNUMBER"));
  tags.year = leading_number(property(props, "DATE"));
  if (!tags.track && tag->track() > 0) tags.track = static_cast<int>(tag->track());
  if (!tags.year && tag->year() > 0) tags.year = static_cast<int>(tag->year());
  tags.has_cover_art = has_cover(ref.file());
  return tags;
}

// ---- whole analysis ---------------------------------------------------------------------------

namespace {

struct Ebur128Deleter {
  void operator()(ebur128_state* st) const { ebur128_destroy(&st); }
};

// Loudness range as EBU Tech 3342 defines it and ffmpeg's ebur128 filter computes it: short-term
// (3 s) loudness sampled every 100 ms once the first 3 s are in, absolute gate -70 LUFS, relative
// gate 20 LU below the energy mean, then the 95th minus the 10th percentile.
// ref: ffmpeg libavfilter/f_ebur128.c (LRA_GATE_THRES, LRA_LOWER_PRC, LRA_HIGHER_PRC). libebur128's
// own LRA samples every 1 s instead, which differs by more than 1 LU on decaying material.
class ShortTermSeries {
 public:
  explicit ShortTermSeries(int rate) : rate_(rate) {}
  // Frames until the next 100 ms boundary.
  std::size_t frames_to_next_step() const {
    const auto next =
        static_cast<std::int64_t>((step_ + 1) * static_cast<std::int64_t>(rate_) / 10);
    return static_cast<std::size_t>(std::max<std::int64_t>(next - frames_, 1));
  }
  // Counts `n` more frames; true when a 100 ms boundary was reached.
  bool advance(std::size_t n) {
    frames_ += static_cast<std::int64_t>(n);
    const auto next =
        static_cast<std::int64_t>((step_ + 1) * static_cast<std::int64_t>(rate_) / 10);
    if (frames_ < next) return false;
    ++step_;
    return true;
  }
  // The loudness (LUFS, K-weighted) of the 100 ms just completed. Short-term loudness is the
  // mean energy of the last 30 of them; this costs one pass over the audio, where asking
  // libebur128 for the 3 s window every 100 ms would sum 30 passes.
  void add_block(double lufs) {
    const double energy = std::isfinite(lufs) ? std::pow(10.0, (lufs + 0.691) / 10.0) : 0.0;
    ring_[static_cast<std::size_t>(step_ - 1) % ring_.size()] = energy;
    if (step_ < static_cast<std::int64_t>(ring_.size())) return;
    double sum = 0.0;
    for (double e : ring_)
      sum += e;
    add(10.0 * std::log10(sum / static_cast<double>(ring_.size())) - 0.691);
  }
  void add(double lufs) {
    if (std::isfinite(lufs) && lufs >= kAbsoluteGate) values_.push_back(lufs);
  }
  double loudness_range() const {
    if (values_.empty()) return 0.0;
    double energy = 0.0;
    for (double v : values_)
      energy += std::pow(10.0, v / 10.0);
    const double gate =
        10.0 * std::log10(energy / static_cast<double>(values_.size())) + kRelativeGate;
    std::vector<double> kept;
    for (double v : values_)
      if (v >= gate) kept.push_back(v);
    if (kept.empty()) return 0.0;
    std::sort(kept.begin(), kept.end());
    const auto at = [&](double percent) {
      const auto k =
          static_cast<std::int64_t>(percent * 0.01 * static_cast<double>(kept.size()) + 0.5);
      return kept[static_cast<std::size_t>(
          std::clamp<std::int64_t>(k - 1, 0, static_cast<std::int64_t>(kept.size()) - 1))];
    };
    return at(95.0) - at(10.0);
  }

 private:
  static constexpr double kAbsoluteGate = -70.0;
  static constexpr double kRelativeGate = -20.0;
  int rate_;
  std::int64_t frames_ = 0;
  std::int64_t step_ = 0;
  std::vector<double> values_;
  std::array<double, 30> ring_{};  // 100 ms block energies, 3 s in all
};

// True peak as ffmpeg's ebur128 filter measures it (peak=true): the signal upsampled 4x by
// libswresample's default interpolator (windowed sinc, 32 taps per phase, Kaiser window with
// beta 9; no low-pass when upsampling) and the largest absolute value of the result.
// ref: ffmpeg libavfilter/f_ebur128.c (swr to 192 kHz) and libswresample/resample.c
// build_filter(). libebur128's own 12-tap interpolator reads 0.5 dB lower on broadband noise.
class TruePeakMeter {
 public:
  static constexpr int kTaps = 32;
  static constexpr int kPhases = 4;

  explicit TruePeakMeter(int channels)
      : channels_(channels), history_(static_cast<std::size_t>(channels) * (kTaps - 1), 0.0f) {
    const int center = (kTaps - 1) / 2;
    constexpr double kBeta = 9.0;
    for (int ph = 0; ph < kPhases; ++ph) {
      double norm = 0.0;
      std::array<double, kTaps> h{};
      for (int i = 0; i < kTaps; ++i) {
        const double d = static_cast<double>(i - center) - static_cast<double>(ph) / kPhases;
        const double x = std::numbers::pi * d;
        const double sinc = x == 0.0 ? 1.0 : std::sin(x) / x;
        const double w = 2.0 * d / kTaps;
        h[static_cast<std::size_t>(i)] =
            sinc * std::cyl_bessel_i(0.0, kBeta * std::sqrt(std::max(1.0 - w * w, 0.0)));
        norm += h[static_cast<std::size_t>(i)];
      }
      for (int i = 0; i < kTaps; ++i) {
        // Stored reversed so the inner product runs forwards over the newest-last window.
        coef_[static_cast<std::size_t>(ph)][static_cast<std::size_t>(kTaps - 1 - i)] =
            static_cast<float>(h[static_cast<std::size_t>(i)] / norm);
      }
      float gain = 0.0f;
      for (float k : coef_[static_cast<std::size_t>(ph)])
        gain += std::fabs(k);
      // A little headroom over the exact bound covers float rounding in the sums.
      max_gain_ = std::max(max_gain_, gain * 1.001f);
    }
  }

  // Phase 0 reproduces the samples themselves (the caller folds in the sample peak), so only
  // phases 1..3 are computed. A block whose samples, times the largest filter gain, cannot beat
  // the peak so far is skipped: exact, and most of a song once its loudest part has been seen.
  void add(const float* interleaved, std::size_t frames) {
    const auto ch_count = static_cast<std::size_t>(channels_);
    const std::size_t blocks = (frames + kBlock - 1) / kBlock;
    window_.assign(kTaps - 1 + blocks * kBlock, 0.0f);
    for (std::size_t c = 0; c < ch_count; ++c) {
      float* hist = history_.data() + c * (kTaps - 1);
      std::copy(hist, hist + kTaps - 1, window_.begin());
      for (std::size_t f = 0; f < frames; ++f)
        window_[kTaps - 1 + f] = interleaved[f * ch_count + c];
      for (std::size_t blk = 0; blk < blocks; ++blk) {
        const std::size_t start = blk * kBlock;
        const std::size_t n = std::min(kBlock, frames - start);
        const float* w = window_.data() + start;
        float local = 0.0f;
        for (std::size_t i = 0; i < n + kTaps - 1; ++i)
          local = std::max(local, std::fabs(w[i]));
        if (local * max_gain_ <= peak_) continue;
        for (std::size_t ph = 1; ph < kPhases; ++ph) {
          interpolate(w, coef_[ph].data(), out_.data());
          for (std::size_t f = 0; f < n; ++f)
            peak_ = std::max(peak_, std::fabs(out_[f]));
        }
      }
      std::copy(window_.begin() + static_cast<std::ptrdiff_t>(frames),
                window_.begin() + static_cast<std::ptrdiff_t>(frames + kTaps - 1), hist);
    }
  }
  double peak() const { return peak_; }

 private:
  static constexpr std::size_t kBlock = 256;
  // out[f] = sum_i k[i] * w[f + i] for a whole block: a fixed trip count over independent outputs,
  // which the compiler vectorises at -O2 (a per-output reduction it would not).
  static void interpolate(const float* __restrict w, const float* __restrict k,
                          float* __restrict out) {
    for (std::size_t f = 0; f < kBlock; ++f)
      out[f] = 0.0f;
    for (std::size_t i = 0; i < kTaps; ++i) {
      const float ki = k[i];
      for (std::size_t f = 0; f < kBlock; ++f)
        out[f] += ki * w[f + i];
    }
  }

  int channels_;
  std::vector<float> history_;  // the last kTaps - 1 samples of each channel
  std::vector<float> window_;
  std::array<float, kBlock> out_{};
  float max_gain_ = 0.0f;  // the largest sum of |coefficients| over the phases
  std::array<std::array<float, kTaps>, kPhases> coef_{};
  float peak_ = 0.0f;
};

double to_db(double linear) {
  return linear > 0.0 ? 20.0 * std::log10(linear) : -std::numeric_limits<double>::infinity();
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

template <typename T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

MetadataResult analyze_audio_file(const fs::path& path, const MetadataOptions& options,
                                  std::stop_token stop) {
  MetadataResult r;
  r.sha256 = sha256_file(path);
  r.tags = read_tags(path);

  auto reader = AudioReader::open(path);
  r.format = reader->info();
  const int channels = r.format.channels;
  const int rate = r.format.sample_rate;

  std::unique_ptr<ebur128_state, Ebur128Deleter> meter(
      ebur128_init(static_cast<unsigned>(channels), static_cast<unsigned long>(rate),
                   EBUR128_MODE_I | EBUR128_MODE_S | EBUR128_MODE_SAMPLE_PEAK));
  if (!meter) {
    YW_THROW_INPUT("{}: loudness meter rejects {} channels at {} Hz", path.string(), channels,
                   rate);
  }
  WaveformBuilder waveform(options.waveform, rate, channels);
  ShortTermSeries short_term(rate);
  TruePeakMeter true_peak_meter(channels);

  constexpr std::size_t kBlockFrames = 16384;
  std::vector<float> block(kBlockFrames * static_cast<std::size_t>(channels));
  for (;;) {
    if (stop.stop_requested()) YW_THROW("{}: stopped", path.string());
    const std::size_t n = reader->read_float(block.data(), kBlockFrames);
    if (n == 0) break;
    // Fed in slices that end on the 100 ms grid, so the short-term series is sampled there.
    std::size_t done = 0;
    while (done < n) {
      const std::size_t take = std::min<std::size_t>(n - done, short_term.frames_to_next_step());
      if (ebur128_add_frames_float(meter.get(),
                                   block.data() + done * static_cast<std::size_t>(channels),
                                   take) != EBUR128_SUCCESS) {
        YW_THROW("{}: loudness meter failed", path.string());
      }
      if (short_term.advance(take)) {
        double block_lufs = 0.0;
        if (ebur128_loudness_window(meter.get(), 100, &block_lufs) != EBUR128_SUCCESS) {
          YW_THROW("{}: loudness meter failed", path.string());
        }
        short_term.add_block(block_lufs);
      }
      done += take;
    }
    waveform.add(block.data(), n);
    true_peak_meter.add(block.data(), n);
    r.decoded_frames += static_cast<std::int64_t>(n);
  }
  if (r.decoded_frames == 0) YW_THROW_INPUT("{}: no audio frames", path.string());

  double integrated = 0.0;
  ebur128_loudness_global(meter.get(), &integrated);
  const double range = short_term.loudness_range();
  double sample_peak = 0.0;
  for (int c = 0; c < channels; ++c) {
    double sp = 0.0;
    ebur128_sample_peak(meter.get(), static_cast<unsigned>(c), &sp);
    sample_peak = std::max(sample_peak, sp);
  }
  // The interpolated signal passes through every sample, so it is never below the sample peak.
  const double true_peak = std::max(true_peak_meter.peak(), sample_peak);
  r.loudness.integrated_lufs = integrated;
  r.loudness.loudness_range_lu = range;
  r.loudness.true_peak_dbtp = to_db(true_peak);
  r.loudness.sample_peak_dbfs = to_db(sample_peak);
  r.replaygain.track_gain_db = ReplayGain::kReferenceLufs - integrated;
  r.replaygain.track_peak = true_peak;
  r.waveform = waveform.finish();

  if (r.format.frames < 0) r.format.frames = r.decoded_frames;
  if (r.format.duration_seconds <= 0.0) {
    r.format.duration_seconds = static_cast<double>(r.decoded_frames) / rate;
  }
  if (r.format.bitrate_kbps <= 0.0 && r.format.duration_seconds > 0.0) {
    std::error_code ec;
    const auto bytes = fs::file_size(path, ec);
    if (!ec)
      r.format.bitrate_kbps = static_cast<double>(bytes) * 8.0 / r.format.duration_seconds / 1000.0;
  }
  return r;
}

nlohmann::json to_json(const MetadataResult& r, const std::optional<std::string>& waveform_uri) {
  const auto& f = r.format;
  const auto& t = r.tags;
  return nlohmann::json{
      {"sha256", r.sha256},
      {"format",
       {{"container", f.container},
        {"codec", f.codec},
        {"sample_rate", f.sample_rate},
        {"channels", f.channels},
        {"bits_per_sample", f.bits_per_sample},
        {"duration_seconds", f.duration_seconds},
        {"frames", f.frames},
        {"bitrate_kbps", std::round(f.bitrate_kbps * 1000.0) / 1000.0}}},
      {"tags",
       {{"title", optional_json(t.title)},
        {"artist", optional_json(t.artist)},
        {"album", optional_json(t.album)},
        {"album_artist", optional_json(t.album_artist)},
        {"track", optional_json(t.track)},
        {"disc", optional_json(t.disc)},
        {"year", optional_json(t.year)},
        {"genre", optional_json(t.genre)},
        {"isrc", optional_json(t.isrc)},
        {"has_cover_art", t.has_cover_art}}},
      {"loudness",
       {{"integrated_lufs", number_or_null(r.loudness.integrated_lufs)},
        {"loudness_range_lu", number_or_null(r.loudness.loudness_range_lu)},
        {"true_peak_dbtp", number_or_null(r.loudness.true_peak_dbtp)},
        {"sample_peak_dbfs", number_or_null(r.loudness.sample_peak_dbfs)}}},
      {"replaygain",
       {{"track_gain_db", number_or_null(r.replaygain.track_gain_db)},
        {"track_peak", number_or_null(r.replaygain.track_peak)}}},
      {"waveform", waveform_uri ? nlohmann::json(*waveform_uri) : nlohmann::json(nullptr)}};
}

}  // namespace yw::worker
