#!/usr/bin/env bash
# Splits the 50 BBBC010 training images (../shared/data/bbbc010/train, or $1) into OUT/train (40 images) and OUT/val
# (10 images: every 5th well, A05, A10, ..., C02), as symbolic links. The shipped pretrained models were trained on
# OUT/train and evaluated on OUT/val with this split. Usage: scripts/bbbc010-split.sh [SRC] [OUT]
set -euo pipefail
src=$(realpath "${1:-../shared/data/bbbc010/train}")
out=${2:-runs/bbbc010/data}
[ -d "$src/images" ] && [ -d "$src/masks" ] || { echo "bbbc010-split: $src has no images/ and masks/ folders" >&2; exit 1; }
rm -rf "$out"
for split in train val; do mkdir -p "$out/$split/images" "$out/$split/masks"; done
i=0
for image in "$src"/images/*.tif; do
  name=$(basename "$image")
  i=$((i + 1))
  split=train
  [ $((i % 5)) -eq 0 ] && split=val
  ln -s "$image" "$out/$split/images/$name"
  ln -s "$src/masks/$name" "$out/$split/masks/$name"
done
echo "bbbc010-split: $(ls "$out/train/images" | wc -l) train, $(ls "$out/val/images" | wc -l) val images in $out"
