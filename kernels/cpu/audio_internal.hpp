#pragma once
// Private to kernels/cpu/audio*.cpp: the two backends behind yw::AudioReader.
#include <filesystem>
#include <memory>
#include <string>

#include "yw/kernels/audio.hpp"

namespace yw::audio_detail {

// The checks every opener runs before a decoder sees the file: it exists, is a regular non-empty
// file, is not a text/HTML page, and a RIFF/WAVE header is sane. Throws yw::InputError saying
// what is wrong. `allow_short_data`: a WAV whose 'data' chunk promises more bytes than the file
// holds is accepted (fpcalc fingerprints what is there).
void check_input_file(const std::filesystem::path& path, bool allow_short_data);

// libsndfile. Returns nullptr and sets `why` when libsndfile does not know the format (so the
// FFmpeg backend gets a try); throws yw::InputError when it knows the format but the file is bad.
std::unique_ptr<AudioReader> open_sndfile(const std::filesystem::path& path, std::string& why);

// FFmpeg (libavformat + libavcodec). Throws yw::InputError when it cannot decode the file;
// `sndfile_why` is added to the message.
std::unique_ptr<AudioReader> open_ffmpeg(const std::filesystem::path& path,
                                         const std::string& sndfile_why);

// The container duration FFmpeg reports (what fpcalc prints), in seconds; < 0 when FFmpeg
// cannot tell. Used for lossy streams, where the decoded length (gapless trimming) and the
// container's idea of the duration differ by the encoder delay and padding.
double ffmpeg_container_duration(const std::filesystem::path& path);

// Largest values the readers accept; anything above is an absurd header, not audio.
inline constexpr int kMaxChannels = 64;
inline constexpr int kMaxSampleRate = 1'536'000;

}  // namespace yw::audio_detail
