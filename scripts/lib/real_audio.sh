# shellcheck shell=bash
# Real third-party music for the fingerprint oracle tier and benchmark (issue 12): tracks shipped
# in Debian packages (hyperrogue-music, planetblupi-music-ogg, nexuiz-music; scripts/lib/deps.sh
# installs them), re-encoded with ffmpeg the ways users upload music.
#
#   yw_real_sources SET     prints the source tracks, one per line: SET=ci is a fixed subset of
#                           two hyperrogue tracks (one that FFmpeg cannot open); SET=full adds every hyperrogue track, the
#                           planetblupi tracks and the nexuiz tracks (unpacked from music.pk3)
#   yw_real_derive SET CACHE SRC...
#                           derives every recipe below from each source into CACHE (created), and
#                           prints "RECIPE<TAB>PATH" per file. Files are named by the md5 of the
#                           source and the recipe's own text, so a changed recipe or source makes
#                           a new file and both build trees share one cache.
#
# Recipes: "name|extension|ffmpeg output options". Derived files keep at most the first 150 s of
# a track (the long planetblupi tracks would otherwise give 500 MB float WAVs; 150 s is past the default 120 s); the shipped file is
# used as it is.
YW_REAL_RECIPES=(
  "wav_s16|wav|-c:a pcm_s16le"
  "wav_s24|wav|-c:a pcm_s24le"
  "wav_s32|wav|-c:a pcm_s32le"
  "wav_f32|wav|-c:a pcm_f32le"
  "wav_f64|wav|-c:a pcm_f64le"
  "wav_u8|wav|-c:a pcm_u8"
  "flac_16|flac|-c:a flac -sample_fmt s16"
  "flac_24|flac|-c:a flac -sample_fmt s32 -bits_per_raw_sample 24"
  "mp3_cbr192|mp3|-c:a libmp3lame -b:a 192k"
  "mp3_vbr|mp3|-c:a libmp3lame -q:a 2"
  "aac_m4a|m4a|-c:a aac -b:a 192k"
  "opus|opus|-c:a libopus -b:a 128k"
  "vorbis_q3|ogg|-c:a libvorbis -q:a 3"
  "mono_22k|wav|-ac 1 -ar 22050 -c:a pcm_s16le"
  "flac_8k|flac|-ar 8000 -c:a flac"
  "wav_f32_96k|wav|-ar 96000 -c:a pcm_f32le"
  "wav_s24_192k|wav|-t 40 -ar 192000 -c:a pcm_s24le"
  "wav_f32_plus6db|wav|-af volume=6dB -c:a pcm_f32le"
  "mp3_plus6db|mp3|-af volume=6dB -c:a libmp3lame -b:a 192k"
  "surround51_flac|flac|-af pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.5*c0+0.5*c1|BL=0.7*c0|BR=0.7*c1 -c:a flac"
  "surround51_aac|m4a|-af pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.5*c0+0.5*c1|BL=0.7*c0|BR=0.7*c1 -c:a aac -b:a 384k"
  "surround51_f32|wav|-af pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.5*c0+0.5*c1|BL=0.7*c0|BR=0.7*c1 -c:a pcm_f32le"
  "lfe_only_51|wav|-af pan=5.1|LFE=0.5*c0+0.5*c1 -c:a pcm_s16le"
  "surround71_flac|flac|-af pan=7.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.2*c0|BL=c0|BR=c1|SL=0.5*c0|SR=0.5*c1 -c:a flac"
  "cut_120160|wav|-af atrim=end_sample=120160 -c:a pcm_s16le"
  "cut_120161|wav|-af atrim=end_sample=120161 -c:a pcm_s16le"
  "cut_2_70_vorbis|ogg|-t 2.70 -c:a libvorbis"
  "cut_2_80_opus|opus|-t 2.80 -c:a libopus"
  "cut_2_76_mp3|mp3|-t 2.76 -c:a libmp3lame"
  "cut_119_9_flac24|flac|-t 119.9 -c:a flac -sample_fmt s32 -bits_per_raw_sample 24"
  "cut_120_1_f32|wav|-t 120.1 -c:a pcm_f32le"
  "cut_120_05_opus|opus|-t 120.05 -c:a libopus"
)

yw_real_sources() {
  local set=$1
  local hr=/usr/share/hyperrogue/music
  if [ ! -d "$hr" ]; then
    echo "real audio: $hr is missing: install hyperrogue-music (scripts/lib/deps.sh)" >&2
    return 1
  fi
  if [ "$set" = ci ]; then
    # hr-savino-ocean.ogg is one FFmpeg (and so fpcalc) cannot open: a refusal both must share.
    printf '%s\n' "$hr/hr3-hell.ogg" "$hr/hr-savino-ocean.ogg"
    return 0
  fi
  ls "$hr"/*.ogg
  ls /usr/share/planetblupi/music/*.ogg 2>/dev/null || true
  local pk3=/usr/share/games/nexuiz/data/music.pk3
  if [ -f "$pk3" ]; then
    local dir=${YW_REAL_CACHE:-/tmp}/nexuiz
    mkdir -p "$dir"
    [ -n "$(ls "$dir" 2>/dev/null)" ] || unzip -q -j -o "$pk3" '*.ogg' -d "$dir"
    ls "$dir"/*.ogg
  fi
}

yw_real_derive() {
  local set=$1 cache=$2
  shift 2
  mkdir -p "$cache"
  local src sum recipe name ext args key out
  for src in "$@"; do
    sum=$(md5sum < "$src" | cut -c1-12)
    printf 'shipped\t%s\n' "$src"
    # A track FFmpeg cannot open is compared as shipped only (both sides must refuse it).
    ffprobe -v error "$src" > /dev/null 2>&1 || continue
    for recipe in "${YW_REAL_RECIPES[@]}"; do
      IFS='|' read -r name ext _ <<< "$recipe"
      args=${recipe#*|*|}
      key=$(printf '%s' "$recipe" | md5sum | cut -c1-8)
      out=$cache/$(basename "${src%.*}")-$sum-$name-$key.$ext
      if [ ! -s "$out" ]; then
        # shellcheck disable=SC2086 # the recipe's options are words
        if ! ffmpeg -nostdin -loglevel fatal -y -t 150 -i "$src" -map 0:a:0 $args "$out.tmp.$ext"; then
          echo "real audio: ffmpeg could not derive $name from $src" >&2
          rm -f "$out.tmp.$ext"
          return 1
        fi
        mv "$out.tmp.$ext" "$out"
      fi
      printf '%s\t%s\n' "$name" "$out"
    done
  done
  : "$set"
}
