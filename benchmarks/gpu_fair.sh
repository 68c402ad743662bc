#!/usr/bin/env bash
# Issue 22, item 12: the fair frontier at width 32 on all 60,000 Fashion-MNIST images, on one GPU.
# One prepared script for a lent device machine (the device tool's `run`, from the repository root):
#   bash benchmarks/gpu_fair.sh            # installs torch/timm/the package and the data if missing
# It stops itself after TIME_S seconds (default 540) and leaves under $OUT (or ./gpu-out) whatever
# finished: the frontier is resumable, so a second call goes on where the first stopped.
set -euo pipefail
OUT="${OUT:-gpu-out}"
TIME_S="${TIME_S:-540}"
mkdir -p "$OUT"
python3 -c "import torch, timm" 2>/dev/null || pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q --no-build-isolation -e . >/dev/null
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || apt-get install -y -q dataset-fashion-mnist >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "$TIME_S" python3 benchmarks/frontier.py --preset gpu --device cuda --batch-size 256 \
    --work "$OUT/work" --record "$OUT/frontier-gpu.json" 2>&1 | tail -n 80 | tee "$OUT/log.txt" || true
