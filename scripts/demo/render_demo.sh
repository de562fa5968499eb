#!/usr/bin/env bash
# Renders the demo song: scripts/demo/render_demo.sh OUT.wav [SECONDS]
#
# Writes a General MIDI file (drums, bass, piano chords, a lead melody; 100 bpm, 4/4) and plays it
# through fluidsynth with the FluidR3 General MIDI soundfont (Debian's fluid-soundfont-gm) into a
# 44.1 kHz stereo 16-bit WAV, so stem separation has percussive and harmonic parts to split.
# Without fluidsynth or the soundfont it falls back to sox: the same song from synthesised tones.
# The song is generated every time (nothing binary is committed); SECONDS defaults to 24.
# YW_DEMO_RENDERER=sox forces the fallback.
set -euo pipefail
out=${1:?usage: render_demo.sh OUT.wav [SECONDS]}
seconds=${2:-24}
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- a Standard MIDI File, built as hex -------------------------------------------------------
ppq=480                       # ticks per quarter note
beats=$(( seconds * 100 / 60 ))  # 100 bpm
bars=$(( (beats + 3) / 4 ))

hex2() { printf '%02x' "$1"; }
hex4() { printf '%08x' "$1"; }
# A variable-length quantity (MIDI delta times).
vlq() {
  local v=$1 out
  out=$(hex2 $(( v & 0x7f )))
  v=$(( v >> 7 ))
  while (( v > 0 )); do
    out="$(hex2 $(( (v & 0x7f) | 0x80 )))$out"
    v=$(( v >> 7 ))
  done
  printf '%s' "$out"
}

# Events are collected as "tick status data1 data2" lines, then sorted and delta-encoded.
events=$work/events
: >"$events"
note() {  # channel tick length key velocity
  printf '%d %02x %d %d\n' "$2" $(( 0x90 | $1 )) "$4" "$5" >>"$events"
  printf '%d %02x %d %d\n' $(( $2 + $3 )) $(( 0x80 | $1 )) "$4" 0 >>"$events"
}
program() { printf '0 %02x %d -1\n' $(( 0xC0 | $1 )) "$2" >>"$events"; }

program 0 0    # acoustic grand piano
program 1 33   # electric bass (finger)
program 2 80   # lead 1 (square)
# C - Am - F - G, one chord per bar.
roots=(48 45 41 43)
thirds=(4 3 4 4)
melody=(72 74 76 79 77 76 74 72 69 72 74 76 77 76 74 71)
q=$ppq
for (( bar = 0; bar < bars; bar++ )); do
  t=$(( bar * 4 * q ))
  r=${roots[$(( bar % 4 ))]}
  th=${thirds[$(( bar % 4 ))]}
  for k in $(( r + 12 )) $(( r + 12 + th )) $(( r + 19 )); do note 0 "$t" $(( 4 * q - 20 )) "$k" 70; done
  for b in 0 1 2 3; do note 1 $(( t + b * q )) $(( q - 40 )) $(( r - 12 + (b == 2 ? 7 : 0) )) 95; done
  for b in 0 1 2 3; do note 2 $(( t + b * q )) $(( q / 2 )) "${melody[$(( (bar * 4 + b) % 16 ))]}" 60; done
  for b in 0 1 2 3; do
    note 9 $(( t + b * q )) 60 42 70                                     # closed hi-hat
    note 9 $(( t + b * q + q / 2 )) 60 42 50
    if (( b % 2 == 0 )); then note 9 $(( t + b * q )) 100 36 110; else note 9 $(( t + b * q )) 100 38 100; fi
  done
done

track="00ff5103$(printf '%06x' 600000)"   # tempo: 600000 us per quarter = 100 bpm
last=0
while read -r tick status d1 d2; do
  track+="$(vlq $(( tick - last )))${status}$(hex2 "$d1")"
  [ "$d2" -ge 0 ] && track+="$(hex2 "$d2")"
  last=$tick
done < <(sort -n -k1,1 -s "$events")
track+="00ff2f00"
len=$(( ${#track} / 2 ))
smf="4d546864$(hex4 6)00000001$(printf '%04x' $ppq)"
smf+="4d54726b$(hex4 $len)$track"
printf "$(sed 's/../\\x&/g' <<<"$smf")" >"$work/demo.mid"

# ---- render -------------------------------------------------------------------------------------
sf2=""
for f in /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf2/default-GM.sf2; do
  [ -f "$f" ] && { sf2=$f; break; }
done
if [ "${YW_DEMO_RENDERER:-}" != sox ] && command -v fluidsynth >/dev/null && [ -n "$sf2" ]; then
  fluidsynth -ni -q -g 0.6 -r 44100 -F "$work/raw.wav" "$sf2" "$work/demo.mid" >/dev/null 2>&1
  # Trim to length, normalise to -1 dBFS, 16-bit stereo.
  sox "$work/raw.wav" -b 16 -c 2 "$out" trim 0 "$seconds" norm -1
  echo "render_demo: $out (${seconds}s, fluidsynth + $(basename "$sf2"), MIDI from this script)"
else
  # Fallback: the same chord progression from sox's synthesiser, plus a noise "drum" pulse.
  parts=()
  for (( bar = 0; bar < bars; bar++ )); do
    r=${roots[$(( bar % 4 ))]}
    th=${thirds[$(( bar % 4 ))]}
    f=$work/bar$bar.wav
    sox -n -r 44100 -c 2 -b 16 "$f" synth 2.4 pluck "%$(( r - 57 + 12 ))" pluck "%$(( r - 57 + 12 + th ))" \
      pluck "%$(( r - 57 + 19 ))" pluck "%$(( r - 57 - 12 ))" 2>/dev/null
    parts+=("$f")
  done
  sox "${parts[@]}" "$work/tones.wav"
  sox -n -r 44100 -c 2 -b 16 "$work/beat.wav" synth 0.05 whitenoise vol 0.5 pad 0 0.55 repeat $(( seconds * 100 / 60 ))
  sox -m "$work/tones.wav" "$work/beat.wav" -b 16 "$out" trim 0 "$seconds" norm -1
  echo "render_demo: $out (${seconds}s, sox fallback: YW_DEMO_RENDERER=sox, or no fluidsynth/GM soundfont)"
fi
