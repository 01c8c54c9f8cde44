#!/usr/bin/env bash
# Short GPU check of the kernel choice by size: builds wfm, then the B=64 solve, the scaling
# table and the reference-size training step at batch 16. Output under $OUT.
set -uo pipefail
out="${OUT:-$PWD/gpu-out}"; mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DWFM_BUILD_GUI=OFF \
    -DWFM_BUILD_BENCHMARKS=OFF -DWFM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null 2>&1
cmake --build build-gpu -j 16 --target wfm > "$out/build.txt" 2>&1 || { grep -E "error" "$out/build.txt" | head; exit 1; }
b=build-gpu/bin/wfm
$b bench ot --device cuda --batch 64 --points 2048 --iters 200 --repeat 7 --path fused --out "$out/ot_B64_N2048.json" > /dev/null
python3 -c 'import json,sys;f=json.load(open(sys.argv[1]))["fused"];print("B64 N2048: %.2f ms (outside iterations %.2f ms)" % (1e3*f["seconds"], 1e3*f["seconds_without_iterations"]))' "$out/ot_B64_N2048.json"
timeout 60 $b bench ot --device cuda --scaling --scaling-batches 1,16 --scaling-points 256,1024,4096,16384 --scaling-iters 50 \
    --tensor-limit-mb 1 --out "$out/ot_scaling.json" > /dev/null
python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["rows"]: print("B=%d N=%d fused %.3f ms/iter" % (r["batch"], r["points"], 1e3*r["fused_seconds_per_iter"]))' "$out/ot_scaling.json"
timeout 60 $b bench train-step --device cuda --batch 16 --points 2048 --dim 3 --width 512 --blocks 6 --heads 4 --iters 200 \
    --steps 10 --warmup 3 --out "$out/train_step_B16.json" > /dev/null
python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); s=j["step_seconds"]; o=j["minibatch_ot_seconds"]+j["inner_ot_seconds"]
print("train step B=16: %.1f ms, OT %.1f ms (%.0f %%)" % (1e3*s, 1e3*o, 100*o/s))' "$out/train_step_B16.json"
