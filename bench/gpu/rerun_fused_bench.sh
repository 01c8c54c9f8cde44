set -uo pipefail
out="$OUT"; export PATH=/usr/local/cuda/bin:$PATH
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DWFM_BUILD_GUI=OFF -DWFM_BUILD_BENCHMARKS=OFF -DWFM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 > /dev/null 2>&1
cmake --build build-gpu -j 16 --target wfm > "$out/build.txt" 2>&1 || { tail -20 "$out/build.txt"; exit 1; }
for i in 1 2; do build-gpu/bin/wfm bench ot --device cuda --batch 64 --points 2048 --iters 200 --repeat 7 --path fused --out "$out/bench_ot_cuda_B64_N2048_fused_run$i.json" | python3 -c 'import json,sys;j=json.load(sys.stdin);print(j["fused"]["seconds"],j["fused"]["seconds_median"])'; done
timeout 60 build-gpu/bin/wfm bench ot --device cuda --scaling --scaling-batches 1,16 --scaling-points 256,1024,4096,16384 --scaling-iters 50 --tensor-limit-mb 40000 --out "$out/bench_ot_cuda_scaling.json" > /dev/null; echo scaling rc $?
