#!/usr/bin/env bash
# Fails when an object of the given static libraries contains a fused multiply-add instruction
# (x86 vfmadd/vfmsub/vfnmadd/vfnmsub, aarch64 fmadd/fmsub/fnmadd/fnmsub/fmla/fmls). The CPU twins
# are built with -ffp-contract=off so that fpcalc identity does not depend on the target having
# FMA (kernels/CMakeLists.txt); in a build whose target has FMA (scripts/test.sh's v3 tree,
# -march=x86-64-v3) this proves the flag took effect. Items still matching fpcalc on a few files
# would not prove it: a fused sum changes the last bit of a chroma value and rarely an item.
set -euo pipefail
status=0
for lib in "$@"; do
  hits=$(objdump -d --no-show-raw-insn "$lib" |
    awk -F'\t' 'NF >= 2 { split($2, w, " "); print w[1] }' |
    grep -Ec '^(vfn?m(add|sub)[0-9a-z]*|fn?m(add|sub)|fml[as])$' || true)
  echo "$(basename "$lib"): $hits fused multiply-add instructions"
  [ "$hits" = 0 ] || status=1
done
exit $status
