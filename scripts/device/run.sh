#!/bin/bash
# Run on a lent NVIDIA machine from the repository root, with .dev and .gl carried (scripts/device/bundle.sh makes
# them): unpacks node and Dawn, checks for an NVIDIA adapter, runs the kernel benchmark (ours vs tfjs) and the
# PatchPerPix assembly benchmark, then the DSB2018 trainings named in RUNS side by side for MIN minutes (default 5;
# default RUNS: all six below). Everything lands in $OUT: logs.tar (the benchmarks' JSON and logs) and one tar per
# run (8 files at most come back). NOCHECK=1 runs it on any adapter, without the .gl step.
set -u
shopt -s nullglob
MIN=${MIN:-5}; T0=$(date +%s); OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
el(){ echo "[$(( $(date +%s)-T0 ))s] $*"; }
. "$(dirname "$0")/env.sh"
el "bench"
timeout ${BENCH_S:-100} node bench.mjs --out $OUT/bench-h200.json > $OUT/bench.log 2>&1; el "bench rc $?"; grep -v "^Warning" $OUT/bench.log | tail -40
el "assembly"
timeout ${ASM_S:-40} node assembly.mjs --out $OUT/assembly-h200.json > $OUT/assembly.log 2>&1; el "assembly rc $?"; tail -15 $OUT/assembly.log
el "training"
mkdir -p runs
RUNS=${RUNS:-"es-wide es-paper rd-small rd-paper cu-small ppp-dsb"}
train(){ n=$1; shift; timeout $(( MIN*60 + 75 )) node wgseg.mjs train --data data --out runs/$n --max-minutes $MIN --fit-schedule --seed 1 "$@" > runs/$n.log 2>&1; echo "$n rc $?" >> runs/rc.txt; }
for n in $RUNS; do
  case $n in
    es-wide) train es-wide --model embedseg --preset small --config ../configs/embedseg-dsb2018-gpu.json & ;;
    es-paper) train es-paper --model embedseg --preset paper --config ../configs/embedseg-dsb2018-paper-gpu.json & ;;
    rd-small) train rd-small --model rdcnet --preset small --config ../configs/rdcnet-dsb2018-gpu.json & ;;
    rd-paper) train rd-paper --model rdcnet --preset paper --config ../configs/rdcnet-dsb2018-gpu.json --batch 3 & ;;
    cu-small) train cu-small --model centerunet --preset small --config ../configs/centerunet-dsb2018-gpu.json & ;;
    ppp-dsb) train ppp-dsb --model ppp --preset paper-dsb --config ../configs/ppp-dsb2018-gpu.json & ;;
    *) echo "run.sh: unknown run $n" ;;
  esac
done
sleep 60; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
wait; el "trained"; cat runs/rc.txt
for n in $RUNS; do
  echo "== $n"; grep -v "^Warning" runs/$n.log | grep -iv "progress" | tail -8
  files=(); for f in $n/config.json $n/state.json $n/best.safetensors $n.log; do [ -e runs/$f ] && files+=("$f") || echo "run.sh: $n has no $f"; done
  tar cf "$OUT/$n.tar" -C runs "${files[@]}"
done
(cd $OUT && tar cf logs.tar bench.log assembly.log *.json 2>/dev/null; rm -f bench.log assembly.log *.json)
ls -la $OUT; el done
