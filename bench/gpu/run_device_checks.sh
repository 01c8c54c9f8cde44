#!/usr/bin/env bash
# GPU session script: kernel checks and benchmark (nvcc only), then the engine + CLI + CUDA
# checks built against PyTorch's LibTorch (no Qt/VTK/format libraries on GPU servers; header-only
# deps carried in .deps/include), then the solver, training-step, scaling and generation
# benchmarks on the GPU. Output under $OUT (or ./gpu-out). SM clocks and power are logged every
# 200 ms to clocks.csv while it runs.
set -uo pipefail
out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
export PATH=/usr/local/cuda/bin:$PATH
t0=$(date +%s)
stamp() { echo "-- $(( $(date +%s) - t0 )) s"; }
echo "== machine"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader
nproc
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)'
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 200 \
    > "$out/clocks.csv" 2>/dev/null &
smi=$!
trap 'kill $smi 2>/dev/null' EXIT
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
# Configure and build in the background while the standalone kernel checks run.
( cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DWFM_BUILD_GUI=OFF -DWFM_BUILD_BENCHMARKS=OFF -DWFM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc > "$out/configure.txt" 2>&1 \
  && cmake --build build-gpu -j 14 --target wfm cuda_cuda_fused_check -- -k 0 > "$out/build.txt" 2>&1; echo $? > "$out/build.rc" ) &
bpid=$!
if [ -z "${SKIP_KERNEL_BENCH:-}" ]; then
echo "== standalone kernel check (nvcc)"
nvcc -O3 -std=c++17 -arch=sm_90 --use_fast_math bench/gpu/check_fused_kernels.cu core/src/ot/cuda/FusedSinkhorn.cu \
    -I core/src -o /tmp/chk && /tmp/chk > "$out/check_fused_kernels.txt" 2>&1; grep -E "FAIL|passed" "$out/check_fused_kernels.txt"
stamp
echo "== standalone kernel benchmark B=64 N=M=2048 d=3 200 iterations, every variant"
nvcc -O3 -std=c++17 -arch=sm_90 --use_fast_math bench/gpu/bench_cuda_sinkhorn.cu core/src/ot/cuda/FusedSinkhorn.cu \
    -I core/src -o /tmp/bench_cuda && /tmp/bench_cuda > "$out/bench_cuda_kernel.json"
python3 - "$out/bench_cuda_kernel.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
print(j["device"], "default", j["ms"], "ms")
for r in j["runs"]:
    print(f'  {r["variant"]:28s} best {r["ms_best"]:7.3f} median {r["ms_median"]:7.3f} fallback blocks {r["fallback_blocks"]}')
best = min(j["runs"], key=lambda r: r["ms_median"])
open("/tmp/best_variant", "w").write(best["variant"])
print("fastest (median):", best["variant"])
EOF
echo "== the engine default kernel without programmatic dependent launch"
WFM_CUDA_SINKHORN_PDL=0 /tmp/bench_cuda --default-only > "$out/bench_cuda_kernel_nopdl.json"
python3 -c 'import json,sys;j=json.load(open(sys.argv[1]));print("default kernel, PDL off:", j["ms"], "ms")' "$out/bench_cuda_kernel_nopdl.json"
stamp
fi
echo "== waiting for the engine build"
wait $bpid
rc=$(cat "$out/build.rc" 2>/dev/null || echo 1)
grep -E "WFM" "$out/configure.txt" | head
stamp
if [ "$rc" != "0" ]; then
    echo "build failed"; grep -E "error|Error" "$out/configure.txt" "$out/build.txt" | head -30; tail -15 "$out/build.txt"; exit 1
fi
echo "== CUDA checks (LibTorch)"
build-gpu/tests/cuda_cuda_fused_check > "$out/cuda_fused_check.txt" 2>&1; grep -E "FAIL|passed" "$out/cuda_fused_check.txt"
stamp
summary='import json,sys
j=json.load(open(sys.argv[1])); f=j["fused"]
print("fused best %.2f ms, median %.2f ms, without iterations %.2f ms, marginal error %.2e" % (1e3*f["seconds"], 1e3*f["seconds_median"], 1e3*f["seconds_without_iterations"], f["marginal_error_max"]))
if "tensor" in j: print("tensor %.1f ms, speedup %.1fx, max cost difference %.1e" % (1e3*j["tensor"]["seconds"], j["speedup"], j["cost_max_relative_difference"]))'
echo "== wfm bench ot --device cuda, B=64 N=M=2048 d=3 200 iterations (engine default kernel, both paths)"
timeout 90 build-gpu/bin/wfm bench ot --device cuda --batch 64 --points 2048 --iters 200 --repeat 7 \
    --tensor-limit-mb 60000 --out "$out/bench_ot_cuda_B64_N2048.json" > /dev/null && python3 -c "$summary" "$out/bench_ot_cuda_B64_N2048.json"
best=$(cat /tmp/best_variant 2>/dev/null || echo "")
for v in $best; do
    echo "== same, fused only, kernel variant $v"
    WFM_CUDA_SINKHORN_VARIANT=$v timeout 60 build-gpu/bin/wfm bench ot --device cuda --batch 64 --points 2048 --iters 200 \
        --repeat 7 --path fused --out "$out/bench_ot_cuda_B64_N2048_$v.json" > /dev/null && python3 -c "$summary" "$out/bench_ot_cuda_B64_N2048_$v.json"
done
echo "== same, fused only, engine default kernel, PDL off"
WFM_CUDA_SINKHORN_PDL=0 timeout 60 build-gpu/bin/wfm bench ot --device cuda --batch 64 --points 2048 --iters 200 \
    --repeat 7 --path fused --out "$out/bench_ot_cuda_B64_N2048_nopdl.json" > /dev/null && python3 -c "$summary" "$out/bench_ot_cuda_B64_N2048_nopdl.json"
stamp
echo "== wfm bench train-step on the GPU at the reference size (2048 points, width 512, 6 blocks)"
for spec in "16 fp32" "16 mixed" "64 fp32" "64 mixed"; do
    set -- $spec
    extra=""; [ "$2" = mixed ] && extra="--mixed"
    timeout 120 build-gpu/bin/wfm bench train-step --device cuda --batch $1 --points 2048 --dim 3 --width 512 \
        --blocks 6 --heads 4 --iters 200 --steps 5 --warmup 1 $extra --out "$out/bench_train_step_cuda_reference_B$1_$2.json" > /dev/null \
    && python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); s=j["step_seconds"]; o=j.get("minibatch_ot_seconds",0)+j.get("inner_ot_seconds",0)
print("B=%s %s: step %.1f ms, OT %.1f ms (%.0f %%), model %.1f ms" % (sys.argv[2], sys.argv[3], 1e3*s, 1e3*o, 100*o/s, 1e3*j.get("model_seconds",0)))' \
        "$out/bench_train_step_cuda_reference_B$1_$2.json" $1 $2
done
stamp
echo "== scaling table (fused and tensor, B = 1 and 16)"
timeout 90 build-gpu/bin/wfm bench ot --device cuda --scaling --scaling-batches 1,16 --scaling-points 256,1024,4096,16384 \
    --scaling-iters 50 --tensor-limit-mb 40000 --out "$out/bench_ot_cuda_scaling.json" > /dev/null; echo "scaling rc $?"
stamp
echo "== generation: a short shapes3d run trained on the GPU, then wfm bench generate"
timeout 100 build-gpu/bin/wfm train --data builtin:shapes3d --config resources/configs/shapes3d.json --steps 400 \
    --device cuda --out /tmp/gpu-run --quiet; echo "train rc $?"
for m in "" "--mixed"; do
    timeout 60 build-gpu/bin/wfm bench generate --run /tmp/gpu-run --device cuda --num 64 --gen-steps 100 --gen-points 256 \
        --repeat 3 $m --out "$out/bench_generate_cuda${m:+_mixed}.json" > /dev/null \
    && python3 -c 'import json,sys;j=json.load(open(sys.argv[1]));print("generate", sys.argv[2], "%.1f clouds/s" % j["clouds_per_second"])' \
        "$out/bench_generate_cuda${m:+_mixed}.json" "${m:-fp32}"
done
stamp
echo "== wfm ot on the demo clouds, GPU vs CPU"
build-gpu/bin/wfm ot --source resources/demo/ring.npy --target resources/demo/square.npy --device cuda
build-gpu/bin/wfm ot --source resources/demo/ring.npy --target resources/demo/square.npy --device cpu
stamp
