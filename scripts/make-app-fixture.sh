#!/usr/bin/env bash
# Makes test/fixtures/app-models/synthetic-embedseg, the model the app test (test/app/run.ts) runs in the page and
# through the CLI: EmbedSeg `small` trained for 600 steps on `wgseg synth` blobs (seed 1; 24 train, 4 validation
# images), about 3 minutes on lavapipe. It segments blob-like nuclei, not real images: it is a test fixture, not a
# shipped model. Usage: bash scripts/make-app-fixture.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node bin/wgseg.js synth --out "$tmp/data" --train 24 --val 4 --test 8 >/dev/null
node bin/wgseg.js train --model embedseg --preset small --data "$tmp/data" --out "$tmp/run" \
  --config configs/embedseg-synthetic-2d.json --steps 600
out=test/fixtures/app-models/synthetic-embedseg
mkdir -p "$out"
# The run's data folder was temporary: the config keeps its name only as a record.
cp "$tmp/run/config.json" "$tmp/run/best.safetensors" "$out/"
echo "wrote $out"
