#!/usr/bin/env bash
# The main job as a new user meets it: a fresh clone, a fresh virtualenv, `pip install .`,
# then `minstn train` with no arguments, RUNS times, each with an empty Numba cache, an
# empty home (so no MNIST is found: the embedded glyph digits) and no network
# (`unshare -n`, root only; without it the runs still never touch the network, but this
# makes sure). Prints the wall time and test error of each run, and the load average.
#
#   bash benchmarks/main_job.sh [RUNS=3] [REV=HEAD]
#
# Results: benchmarks/RESULTS.md, "The main job".
set -euo pipefail
RUNS="${1:-3}"
REV="${2:-HEAD}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/minstn-main-job.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

git clone --quiet "$REPO" "$WORK/minstn"
git -C "$WORK/minstn" checkout --quiet "$REV"
echo "commit $(git -C "$WORK/minstn" rev-parse --short HEAD), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
start=$(date +%s)
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet "$WORK/minstn"
echo "pip install .: $(( $(date +%s) - start )) s"

NET=()
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then NET=(unshare -n); fi
for i in $(seq 1 "$RUNS"); do
  home="$WORK/home$i"
  mkdir -p "$home"
  echo "run $i: load average $(cut -d' ' -f1-3 /proc/loadavg) before"
  ( cd "$home" && env -i PATH="$WORK/venv/bin:/usr/bin:/bin" HOME="$home" MPLBACKEND=Agg \
      NUMBA_CACHE_DIR="$home/numba-cache" "${NET[@]}" \
      /usr/bin/time -f "run $i: wall %e s, peak RSS %M KB" minstn train --no-progress --out "$home/run" \
      > "$home/train.log" 2>&1 ) || { cat "$home/train.log"; exit 1; }
  grep "^epoch $(grep -o '"epochs": [0-9]*' "$home/run/config.json" | grep -o '[0-9]*$')/" "$home/train.log"
  grep "^run $i: wall" "$home/train.log"
  "$WORK/venv/bin/python" -c "import json, sys; m = json.load(open(sys.argv[1])); \
h = m['history'][-1]; print(f\"run $i: test error {100 * m['test_error']:.2f}%, theta shift {h['theta_shift']:.3f}, \
{100 * h['off_canvas']:.1f}% off canvas, data: {m['data']}\")" "$home/run/metrics.json"
  echo "run $i: load average $(cut -d' ' -f1-3 /proc/loadavg) after"
done
