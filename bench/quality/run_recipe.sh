#!/usr/bin/env bash
# Trains a recipe from resources/configs, evaluates it on its held-out split and times generation;
# everything lands in OUT (default bench/results/quality-<recipe>-<date>/).
#   bench/quality/run_recipe.sh RECIPE [OUT] [extra evaluate flags...]
# Run on a quiet machine: the training time is part of the result. Generation speed is timed at
# GEN_POINTS points per cloud (default 256; 0 = sizes drawn from the training data). KEEP_RUN=1
# keeps the run folder (OUT/run) for further evaluations.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
recipe="$1"
out="${2:-$root/bench/results/quality-$recipe-$(date +%F)}"
shift $(( $# >= 2 ? 2 : 1 ))
wfm="${WFM:-$root/build/bin/wfm}"
run="$out/run"
mkdir -p "$out"
rm -rf "$run"
{
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/machine.txt"
start=$(date +%s.%N)
/usr/bin/time -v "$wfm" train --config "$root/resources/configs/$recipe.json" --out "$run" \
    > "$out/train.json" 2> "$out/train.log"
end=$(date +%s.%N)
echo "train_wall_seconds: $(echo "$end - $start" | bc)" >> "$out/machine.txt"
cp "$run/log.csv" "$out/log.csv"
"$wfm" evaluate --run "$run" --out "$out/evaluate.json" "$@" > /dev/null
"$wfm" bench generate --run "$run" --num 32 --gen-steps 100 --integrator midpoint --repeat 2 \
    --gen-points "${GEN_POINTS:-256}" --out "$out/generate.json" > /dev/null
[ -n "${KEEP_RUN:-}" ] || rm -rf "$run"
cat "$out/evaluate.json"
