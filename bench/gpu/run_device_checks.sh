#!/usr/bin/env bash
# GPU session script: kernel checks and benchmark (nvcc only), then the engine + CLI + CUDA
# checks built against PyTorch's LibTorch (no Qt/VTK/format libraries on GPU servers; header-only
# deps carried in .deps/include), then `wfm bench ot` on the GPU. Output under $OUT (or ./gpu-out).
set -uo pipefail
out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
export PATH=/usr/local/cuda/bin:$PATH
t0=$(date +%s)
stamp() { echo "-- $(( $(date +%s) - t0 )) s"; }
echo "== machine"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)'
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
# Configure in the background while the standalone kernel checks run.
( cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DWFM_BUILD_GUI=OFF -DWFM_BUILD_BENCHMARKS=OFF -DWFM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc > "$out/configure.txt" 2>&1 \
  && cmake --build build-gpu -j 14 --target wfm cuda_cuda_fused_check > "$out/build.txt" 2>&1; echo $? > "$out/build.rc" ) &
bpid=$!
echo "== standalone kernel check (nvcc)"
nvcc -O3 -std=c++17 -arch=sm_90 --use_fast_math bench/gpu/check_fused_kernels.cu core/src/ot/cuda/FusedSinkhorn.cu \
    -I core/src -o /tmp/chk && /tmp/chk 2>&1 | tail -15
stamp
echo "== standalone kernel benchmark B=64 N=M=2048 d=3 200 iterations"
nvcc -O3 -std=c++17 -arch=sm_90 --use_fast_math bench/gpu/bench_cuda_sinkhorn.cu core/src/ot/cuda/FusedSinkhorn.cu \
    -I core/src -o /tmp/bench_cuda && /tmp/bench_cuda > "$out/bench_cuda_kernel.json"; cat "$out/bench_cuda_kernel.json"
stamp
echo "== waiting for the engine build"
wait $bpid
rc=$(cat "$out/build.rc" 2>/dev/null || echo 1)
grep -E "WFM" "$out/configure.txt" | head
stamp
if [ "$rc" != "0" ]; then
    echo "build failed"; grep -E "error|Error" "$out/configure.txt" "$out/build.txt" | head -30; tail -15 "$out/build.txt"; exit 1
fi
echo "== CUDA checks (LibTorch)"
build-gpu/tests/cuda_cuda_fused_check > "$out/cuda_fused_check.txt" 2>&1; tail -25 "$out/cuda_fused_check.txt"
stamp
echo "== wfm bench ot --device cuda, B=64 N=M=2048 d=3 200 iterations"
timeout 90 build-gpu/bin/wfm bench ot --device cuda --batch 64 --points 2048 --iters 200 --repeat 5 \
    --tensor-limit-mb 60000 --out "$out/bench_ot_cuda_B64_N2048.json" | head -c 2500; echo
stamp
echo "== wfm bench train-step on the GPU at the reference size (B=16, 2048 points, width 512, 6 blocks)"
timeout 150 build-gpu/bin/wfm bench train-step --device cuda --batch 16 --points 2048 --dim 3 --width 512 \
    --blocks 6 --heads 4 --iters 200 --steps 5 --warmup 1 --out "$out/bench_train_step_cuda_reference.json" | head -c 1500; echo
stamp
echo "== wfm bench ot --device cuda, B=4 N=M=1024"
timeout 40 build-gpu/bin/wfm bench ot --device cuda --repeat 5 --out "$out/bench_ot_cuda_B4_N1024.json" > /dev/null
echo "== wfm ot on the demo clouds, GPU vs CPU"
build-gpu/bin/wfm ot --source resources/demo/ring.npy --target resources/demo/square.npy --device cuda
build-gpu/bin/wfm ot --source resources/demo/ring.npy --target resources/demo/square.npy --device cpu
stamp
