#!/usr/bin/env bash
# Splits the 50 BBBC010 training images (../shared/data/bbbc010/train, or $1) into OUT/train (40 images), OUT/val
# (5 images: A05, A15, B01, B11, B21) and OUT/test (5 images: A10, A20, B06, B16, C02), as symbolic links: every 5th
# well is held out, alternately for validation (checkpoint choice and postprocessing tuning) and for the test that
# nothing during training sees. The shipped pretrained models were trained with this split and scored on OUT/test.
# Usage: scripts/bbbc010-split.sh [SRC] [OUT]
set -euo pipefail
src=$(realpath "${1:-../shared/data/bbbc010/train}")
out=${2:-runs/bbbc010/data}
[ -d "$src/images" ] && [ -d "$src/masks" ] || { echo "bbbc010-split: $src has no images/ and masks/ folders" >&2; exit 1; }
rm -rf "$out"
for split in train val test; do mkdir -p "$out/$split/images" "$out/$split/masks"; done
i=0
for image in "$src"/images/*.tif; do
  name=$(basename "$image")
  i=$((i + 1))
  split=train
  [ $((i % 10)) -eq 5 ] && split=val
  [ $((i % 10)) -eq 0 ] && split=test
  ln -s "$image" "$out/$split/images/$name"
  ln -s "$src/masks/$name" "$out/$split/masks/$name"
done
echo "bbbc010-split: $(ls "$out/train/images" | wc -l) train, $(ls "$out/val/images" | wc -l) val, $(ls "$out/test/images" | wc -l) test images in $out"
