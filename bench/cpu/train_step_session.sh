#!/usr/bin/env bash
# One training-step session on the CPU: WFM Studio in float32 and with bfloat16 autocast, and the
# PyTorch peer, at the CPU-friendly size; then the reference size with autocast. Run alone on the
# machine.   bench/cpu/train_step_session.sh OUT_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: train_step_session.sh OUT_DIR}"
wfm="${WFM:-$root/build/bin/wfm}"
mkdir -p "$out"
{
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "cpu flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512f|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')"
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "load before: $(cat /proc/loadavg)"
} > "$out/machine.txt"
friendly=(--batch 16 --points 256 --dim 2 --width 128 --blocks 4 --heads 4 --mlp 512 --iters 100 --eps 0.002
          --steps 5 --warmup 1)
"$wfm" bench train-step "${friendly[@]}" --out "$out/bench_train_step_cpu_friendly_float32.json" > /dev/null
"$wfm" bench train-step "${friendly[@]}" --mixed --out "$out/bench_train_step_cpu_friendly_mixed.json" > /dev/null
OMP_NUM_THREADS=2 OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 "$root/../shared/peers/peer_wfm_step.py" \
    --batch 16 --points 256 --dim 2 --width 128 --layers 4 --heads 4 --iters 100 --steps 5 --warmup 1 \
    > "$out/peer_wfm_step_cpu_friendly.json"
"$wfm" bench train-step --batch 16 --points 2048 --dim 3 --width 512 --blocks 6 --heads 4 --mlp 512 \
    --iters 200 --eps 0.002 --steps 1 --warmup 1 --mixed --out "$out/bench_train_step_reference_size_mixed.json" > /dev/null
echo "load after: $(cat /proc/loadavg)" >> "$out/machine.txt"
for f in "$out"/*.json; do
    /usr/bin/python3 - "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
step = d.get("step_seconds", d.get("step_s_median"))
print(f"{sys.argv[1].split('/')[-1]}: step {step:.3f} s, peak {d.get('peak_rss_mb', d.get('max_rss_gib', 0))}")
PY
done
# Generation speed of a trained run (RUN, optional): 16 clouds of 256 points, 100 midpoint steps,
# the run's guidance, float32 and bfloat16 autocast.
if [ -n "${RUN:-}" ]; then
    "$wfm" bench generate --run "$RUN" --num 16 --gen-steps 100 --integrator midpoint --repeat 1 --gen-points 256 \
        --out "$out/bench_generate_float32.json" > /dev/null
    "$wfm" bench generate --run "$RUN" --num 16 --gen-steps 100 --integrator midpoint --repeat 1 --gen-points 256 \
        --mixed --out "$out/bench_generate_mixed.json" > /dev/null
    for f in "$out"/bench_generate_*.json; do
        /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[1].split('/')[-1], round(d['clouds_per_second'],3), 'clouds/s')" "$f"
    done
fi
