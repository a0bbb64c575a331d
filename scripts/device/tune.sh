#!/bin/bash
# Kernel-shape measurements on a lent NVIDIA machine (issue 19), run from the repository root with .dev and .gl
# carried (scripts/device/bundle.sh makes them):
#   1. the whole benchmark, ours against tfjs, with --large (2048³ and 4096³ matmuls), under the adapter's default
#      tuning (src/engine/tuning.ts);
#   2. the matmuls under every other matmul tuning, and the convolution cases under other weight-gradient splits
#      (WGSEG_TUNING, ours only);
#   3. `wgseg train --profile 3` of each model on the DSB2018 configs: the lavapipe ones (batch 2 of 128²) and the
#      GPU ones (batch 8 of 256²).
# Logs and JSON land in $OUT/results.tar, re-packed after every stage so a run cut short still returns what it did.
set -u
T0=$(date +%s); OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
W=/tmp/tune; mkdir -p $W
el(){ echo "[$(( $(date +%s)-T0 ))s] $*"; }
pack(){ tar cf "$OUT/results.tar" -C $W . ; }
. "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.sm --format=csv,noheader 2>&1

el "bench, default tuning"
timeout ${BENCH_S:-150} node bench.mjs --large --out $W/bench-default.json > $W/bench-default.log 2>&1; el "rc $?"
grep -v "^Warning" $W/bench-default.log | grep "^|\|ceiling\|tuning"; pack

el "matmul tunings"
for t in matmulBlock=4,matmulTile=32 matmulBlock=4,matmulTile=64 matmulBlock=4,matmulTile=128 matmulBlock=8,matmulTile=64; do
  WGSEG_TUNING=$t timeout 45 node bench.mjs --large --no-peer --filter '^matmul' --out $W/bench-$t.json > $W/bench-$t.log 2>&1
  echo "$t rc $?: $(grep '^matmul' $W/bench-$t.log | sed 's/, tfjs.*//' | tr '\n' ';')"
done; pack

el "conv weight-gradient splits"
for n in 512 2048; do
  t=convWeightGradWorkgroups=$n
  WGSEG_TUNING=$t timeout 45 node bench.mjs --no-peer --filter 'weight' --out $W/bench-$t.json > $W/bench-$t.log 2>&1
  echo "$t rc $?: $(grep 'weight' $W/bench-$t.log | grep -v '^|' | sed 's/, tfjs.*//' | tr '\n' ';')"
done; pack

el "profiles"
prof(){ n=$1; shift; timeout ${PROF_S:-30} node wgseg.mjs train --data data --seed 1 --profile 3 "$@" > $W/profile-$n.log 2>&1; el "$n rc $?"; grep -v "^Warning" $W/profile-$n.log | head -14; pack; }
prof rd-small-128 --model rdcnet --preset small --config ../configs/rdcnet-dsb2018.json
prof es-small-128 --model embedseg --preset small --config ../configs/embedseg-dsb2018.json
prof rd-small-256 --model rdcnet --preset small --config ../configs/rdcnet-dsb2018-gpu.json
prof es-small-256 --model embedseg --preset small --config ../configs/embedseg-dsb2018-gpu.json
prof rd-paper-256 --model rdcnet --preset paper --config ../configs/rdcnet-dsb2018-gpu.json --batch 3
prof es-paper-256 --model embedseg --preset paper --config ../configs/embedseg-dsb2018-paper-gpu.json
prof cu-small-256 --model centerunet --preset small --config ../configs/centerunet-dsb2018-gpu.json
prof ppp-256 --model ppp --preset paper-dsb --config ../configs/ppp-dsb2018-gpu.json
el done
