# shellcheck shell=bash
# Finds a built binary for the benchmarks: yw_built ROOT PATH_IN_TREE prints the first executable
# among $YW_BUILD_DIR/PATH (the tree a caller such as gpu-check.sh names), ROOT/build/dev/PATH
# (scripts/dev.sh's tree) and ROOT/build/*/PATH (any other); nothing, and status 1, when none is.
yw_built() {
  local root=$1 rel=$2 b
  for b in ${YW_BUILD_DIR:+"$YW_BUILD_DIR/$rel"} "$root/build/dev/$rel" "$root"/build/*/"$rel"; do
    [ -x "$b" ] && { echo "$b"; return 0; }
  done
  return 1
}
