#!/bin/bash
# Runs every ATen GPU test in its own process (a device-side assert ends a CUDA context for good, and
# must not take the other tests with it), then one diagnostic variant. Usage: tests/aten_gpu_run.sh OUTDIR
out=${1:-/tmp/aten_gpu}; mkdir -p "$out"; export ATEN_DIAG_DIR="$out"
ids=$(python3 -m pytest -q --collect-only -p no:cacheprovider tests/test_aten_gpu.py 2>/dev/null | grep "::")
n=0
for id in $ids; do
  n=$((n + 1))
  timeout 120 python3 -m pytest -q -x -W ignore -p no:cacheprovider "$id" > "$out/t$n.log" 2>&1
  echo "$id :: $(tail -1 "$out/t$n.log")"
  grep -E "^E  " "$out/t$n.log" | head -4
done
ATEN_DIAG_TAG=_nows CUBLAS_WORKSPACE_CONFIG=:0:0 timeout 120 python3 -m pytest -q -W ignore -p no:cacheprovider \
  "tests/test_aten_gpu.py::test_every_node_equals_torch_eager_and_captured[True-mlp]" 2>&1 | tail -1
