#pragma once
// Metadata of one audio file (design.md §2, `extract_metadata`): format facts, tags, loudness,
// ReplayGain, SHA-256 of the bytes and waveform peaks. CPU only; one pass over the decoded audio.
//
// Thread-safety: every function here is reentrant; analyses of different files may run at once.
// Errors: yw::InputError when the file cannot be read or decoded (the message starts with the
// path); yw::Error for anything else.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "yw/kernels/audio.hpp"

namespace yw::worker {

// Tags as TagLib reads them. Absent tags are empty optionals (JSON null), never "".
struct AudioTags {
  std::optional<std::string> title, artist, album, album_artist, genre, isrc;  // UTF-8
  std::optional<int> track, disc, year;
  bool has_cover_art = false;  // an attached picture (ID3v2 APIC, FLAC/Vorbis picture, MP4 covr)
};

// EBU R 128 loudness of the whole file. Values are -inf (JSON null) for digital silence.
// ref: ffmpeg's ebur128 filter (`-af ebur128=peak=true`), which implements the same BS.1770-4
// gating (libebur128); LRA and true peak follow the filter (see metadata.cpp for the details).
struct Loudness {
  double integrated_lufs = 0.0;    // LUFS, gated (-70 LUFS absolute, -10 LU relative)
  double loudness_range_lu = 0.0;  // LU (EBU Tech 3342)
  double true_peak_dbtp = 0.0;     // dBTP, the loudest channel
  double sample_peak_dbfs = 0.0;   // dBFS, the loudest channel
};

// ReplayGain 2.0 for the track: the gain that brings it to the -18 LUFS reference, and its peak
// (linear true peak, 1.0 = full scale), as rsgain/loudgain write REPLAYGAIN_TRACK_*.
struct ReplayGain {
  static constexpr double kReferenceLufs = -18.0;
  double track_gain_db = 0.0;
  double track_peak = 0.0;
};

// Waveform peaks in BBC audiowaveform's JSON format, version 2: the channels are averaged to one
// (audiowaveform's default without --split-channels), then each pixel of `samples_per_pixel`
// frames stores its min and max as signed `bits`-bit integers (8: -128..127; 16: -32768..32767),
// data = [min0, max0, min1, max1, ...], length = number of pixels (the last may be partial).
struct WaveformConfig {
  int samples_per_pixel = 512;
  int bits = 8;  // 8 or 16
};
struct Waveform {
  int version = 2;
  int channels = 1;
  int sample_rate = 0;
  int samples_per_pixel = 0;
  int bits = 8;
  std::int64_t length = 0;  // pixels
  std::vector<int> data;    // 2 * length values
};
// {"version":2,"channels":1,"sample_rate":…,"samples_per_pixel":…,"bits":…,"length":…,"data":[…]}
nlohmann::json to_json(const Waveform& waveform);

// Builds a Waveform incrementally from interleaved float frames.
class WaveformBuilder {
 public:
  WaveformBuilder(const WaveformConfig& config, int sample_rate, int channels);
  void add(const float* interleaved, std::size_t frames);
  Waveform finish();  // flushes the partial last pixel

 private:
  void flush_pixel();
  WaveformConfig config_;
  int channels_;
  Waveform out_;
  int in_pixel_ = 0;
  float min_ = 0.0f, max_ = 0.0f;  // channel sums, not yet scaled
};

struct MetadataResult {
  std::string sha256;  // lowercase hex of the file's bytes
  AudioInfo format;
  std::int64_t decoded_frames = 0;  // frames actually decoded (the header may not say)
  AudioTags tags;
  Loudness loudness;
  ReplayGain replaygain;
  Waveform waveform;
};

struct MetadataOptions {
  WaveformConfig waveform;
};

// Reads, hashes, tags and decodes `path` in one pass; checks `stop` between decoded blocks and
// throws yw::Error("stopped") when it is requested.
MetadataResult analyze_audio_file(const std::filesystem::path& path,
                                  const MetadataOptions& options = {}, std::stop_token stop = {});

// The `extract_metadata` output without record_id: {"sha256","format":{…},"tags":{…},
// "loudness":{…},"replaygain":{…},"waveform": waveform_uri or null}. Non-finite numbers are null.
nlohmann::json to_json(const MetadataResult& result,
                       const std::optional<std::string>& waveform_uri);

// Lowercase hex SHA-256 of a file's bytes (OpenSSL EVP). Throws yw::InputError when unreadable.
std::string sha256_file(const std::filesystem::path& path);
// Tags only (TagLib). Throws yw::InputError when TagLib cannot open the file at all; a format
// TagLib does not know yields empty tags.
AudioTags read_tags(const std::filesystem::path& path);

}  // namespace yw::worker
