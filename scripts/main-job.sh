#!/usr/bin/env bash
# The main job (`npm run main`): RDCNet end to end on data the project makes itself. Writes a synthetic 2D dataset,
# trains the `small` preset (configs/MODEL-synthetic-2d.json, at most MINUTES minutes, default 20), predicts the
# held-out test images and prints their metrics as one JSON line. Everything goes under OUT (default runs/main).
# MODEL=embedseg runs the same job with EmbedSeg (its prediction averages the 8 rotations/flips: --tta).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/main}
minutes=${MINUTES:-20}
model=${MODEL:-rdcnet}
predict_flags=()
[ "$model" = embedseg ] && predict_flags=(--tta)
rm -rf "$out"
npx wgseg synth --out "$out/data" --train 24 --val 4 --test 8
npx wgseg train --model "$model" --preset small --data "$out/data" --out "$out/run" \
  --config "configs/$model-synthetic-2d.json" --max-minutes "$minutes"
npx wgseg predict --model "$out/run" --input "$out/data/test/images" --out "$out/pred" "${predict_flags[@]}"
echo "test images (held out):"
npx wgseg eval --gt "$out/data/test/masks" --pred "$out/pred"
