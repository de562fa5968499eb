// Tags written by `ffmpeg -metadata` (label oracle) come back from TagLib exactly, non-ASCII
// included, with the embedded cover detected, in MP3, FLAC, Ogg Vorbis and M4A.
#include <array>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metadata/metadata_test_util.hpp"
#include "yw/worker/metadata.hpp"

namespace yw::test {
namespace {

const std::string kTitle = "Größe — 東京 ☃";
const std::string kArtist = "Björk & Sigur Rós";
const std::string kAlbum = "Ünïcode Album";
const std::string kAlbumArtist = "Various Ärtists";
const std::string kGenre = "Jazz";
const std::string kIsrc = "USRC17607839";

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

// A FLAC METADATA_BLOCK_PICTURE (front cover): how Ogg Vorbis carries cover art, since ffmpeg's
// Ogg muxer cannot attach a picture stream.
std::string flac_picture_block(const std::string& png) {
  std::string b;
  const auto u32 = [&b](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8)
      b.push_back(static_cast<char>((v >> s) & 0xFF));
  };
  const std::string mime = "image/png";
  u32(3);  // front cover
  u32(static_cast<uint32_t>(mime.size()));
  b += mime;
  u32(0);  // description
  u32(32);
  u32(32);
  u32(24);
  u32(0);
  u32(static_cast<uint32_t>(png.size()));
  b += png;
  return b;
}

struct TagCase {
  const char* ext;
  std::vector<std::string> codec;
  bool cover_as_stream;  // attached picture stream; else METADATA_BLOCK_PICTURE
  bool isrc_survives;    // ffmpeg's MP4 muxer has no ISRC atom and drops it (ffprobe agrees)
};

class TagsOracleTest : public ::testing::TestWithParam<TagCase> {};

TEST_P(TagsOracleTest, RoundTripsExactly) {
  const auto& c = GetParam();
  ScratchDir dir("yw-tags");
  const auto wav = dir / "src.wav";
  const auto png = dir / "cover.png";
  ASSERT_TRUE(run_tool({"sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav.string(), "synth",
                        "2", "sine", "440", "vol", "0.3"}));
  ASSERT_TRUE(run_tool({"ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "color=c=red:s=32x32", "-frames:v", "1", png.string()}));
  const auto out = dir / (std::string("tagged.") + c.ext);
  std::vector<std::string> argv = {"ffmpeg", "-loglevel", "error", "-y", "-i", wav.string()};
  if (c.cover_as_stream) {
    argv.insert(argv.end(), {"-i", png.string(), "-map", "0:a", "-map", "1:v", "-c:v", "copy",
                             "-disposition:v", "attached_pic"});
  } else {
    std::ifstream in(png, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    argv.insert(argv.end(),
                {"-metadata", "METADATA_BLOCK_PICTURE=" + base64(flac_picture_block(bytes))});
  }
  argv.insert(argv.end(), c.codec.begin(), c.codec.end());
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"title", kTitle},
                                                        {"artist", kArtist},
                                                        {"album", kAlbum},
                                                        {"album_artist", kAlbumArtist},
                                                        {"track", "3/12"},
                                                        {"disc", "2/3"},
                                                        {"date", "2021"},
                                                        {"genre", kGenre},
                                                        {"ISRC", kIsrc}}) {
    argv.insert(argv.end(), {"-metadata", k + "=" + v});
  }
  argv.push_back(out.string());
  ASSERT_TRUE(run_tool(argv));

  const auto t = yw::worker::read_tags(out);
  SCOPED_TRACE(c.ext);
  EXPECT_EQ(t.title, kTitle);
  EXPECT_EQ(t.artist, kArtist);
  EXPECT_EQ(t.album, kAlbum);
  EXPECT_EQ(t.album_artist, kAlbumArtist);
  EXPECT_EQ(t.genre, kGenre);
  EXPECT_EQ(t.track, 3);
  EXPECT_EQ(t.disc, 2);
  EXPECT_EQ(t.year, 2021);
  EXPECT_TRUE(t.has_cover_art);
  if (c.isrc_survives) {
    EXPECT_EQ(t.isrc, kIsrc);
  } else {
    EXPECT_EQ(t.isrc, std::nullopt);
    const auto probe = run_process({"ffprobe", "-v", "error", "-show_entries",
                                    "format_tags:stream_tags", "-of", "json", out.string()});
    EXPECT_EQ(probe.out.find(kIsrc), std::string::npos)
        << "ffprobe sees an ISRC that TagLib missed: " << probe.out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Containers, TagsOracleTest,
    ::testing::Values(TagCase{"mp3", {"-c:a", "libmp3lame", "-id3v2_version", "3"}, true, true},
                      TagCase{"flac", {"-c:a", "flac"}, true, true},
                      TagCase{"ogg", {"-c:a", "libvorbis"}, false, true},
                      TagCase{"m4a", {"-c:a", "aac"}, true, false}),
    [](const auto& param_info) { return std::string(param_info.param.ext); });

TEST(TagsTest, UntaggedFileHasNullTagsAndNoCover) {
  ScratchDir dir("yw-tags");
  const auto wav = dir / "plain.wav";
  ASSERT_TRUE(
      run_tool({"sox", "-n", "-r", "44100", "-c", "1", wav.string(), "synth", "1", "sine", "440"}));
  const auto j = yw::worker::to_json(yw::worker::analyze_audio_file(wav), std::nullopt);
  for (const char* k :
       {"title", "artist", "album", "album_artist", "track", "disc", "year", "genre", "isrc"}) {
    EXPECT_TRUE(j["tags"][k].is_null()) << k << ": " << j["tags"].dump();
  }
  EXPECT_EQ(j["tags"]["has_cover_art"], false);
}

}  // namespace
}  // namespace yw::test
