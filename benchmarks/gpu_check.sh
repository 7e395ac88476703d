#!/usr/bin/env bash
# The GPU check, for whoever has a CUDA GPU: one command, under 8 minutes on one GPU.
#   1. the CUDA tests, with BENCH_REQUIRE_CUDA=1 so that a skip is a failure;
#   2. training images/s per speed option (fp32, channels_last, bf16, compile) for the four
#      seed networks (benchmarks/training_speed.py on cuda);
#   3. deploy-form latency of the four networks at 256 and 512 px (bench profile --latency, CUDA
#      events), each with its GPU, clocks and cuDNN policy in the JSON record.
# Results go to $OUT (or reports/benchmarks/gpu): gpu_tests.log, training_speed.{json,md},
# latency_<net>_<size>.json. --quick: one network, one size, short time caps, no compile; with
# BENCH_GPU_CHECK_DEVICE=cpu the test suite runs that on the CPU, so that the script does not rot.
#
#   bash benchmarks/gpu_check.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
out="${OUT:-reports/benchmarks/gpu}"
mkdir -p "$out"
python="${PYTHON:-python3}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then python=.venv/bin/python; fi
device="${BENCH_GPU_CHECK_DEVICE:-cuda}"
networks="tinyunet ulite alnet lmnet"
sizes="256 512"
seconds=20
compile=""
train_size=128
if [ "$quick" = 1 ]; then networks="tinyunet"; sizes="64"; seconds=1; compile="--no-compile"; train_size=32; fi

"$python" - "$device" <<'EOF'
import sys

import torch

device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_check: no CUDA GPU visible to torch {torch.__version__} (a CPU build?); nothing to check")
print(f"gpu_check on {device}: torch {torch.__version__}",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

echo "== 1. CUDA tests (skips are failures)"
if [ "$device" != "cpu" ]; then
  BENCH_REQUIRE_CUDA=1 timeout 240 "$python" -m pytest -q -m cuda tests 2>&1 | tee "$out/gpu_tests.log"
else
  echo "device cpu: the CUDA tests are left out" | tee "$out/gpu_tests.log"
fi

echo "== 2. training images/s per option"
timeout 240 "$python" -m benchmarks.training_speed --networks $networks --size "$train_size" --device "$device" \
  --max-seconds "$seconds" $compile --out "$out"

echo "== 3. deploy-form latency"
for net in $networks; do
  for size in $sizes; do
    timeout 60 "$python" -m bench profile "$net" --size "$size" --latency --form deploy --device "$device" \
      --max-seconds "$seconds" --format json > "$out/latency_${net}_${size}.json"
    "$python" -c "import json,sys; r=json.load(open(sys.argv[1]))['latency'][0]; \
print(sys.argv[2], sys.argv[3], 'px:', round(r['median_ms'], 3), 'ms, IQR', round(r['iqr_ms'], 3))" \
      "$out/latency_${net}_${size}.json" "$net" "$size"
  done
done
echo "gpu_check: done; results in $out"
