#!/usr/bin/env bash
# Splits a folder of images/ and masks/ (plus instances/ and overlaps/ where present, as BBBC010 ships them) into
# OUT/{train,val,test}, as symbolic links, by each image's position i (1-based, in name order): i % PERIOD == VAL goes to
# val (checkpoint choice and postprocessing tuning), i % PERIOD == TEST to test (seen by nothing during training), the
# rest to train. The split depends only on the file names, so it is the same on every machine.
# Usage: scripts/split-dataset.sh SRC OUT PERIOD VAL TEST
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: split-dataset.sh SRC OUT PERIOD VAL TEST" >&2; exit 2; }
src=$(realpath "$1")
out=$2
period=$3
val=$4
test=$5
[ -d "$src/images" ] && [ -d "$src/masks" ] || { echo "split-dataset: $src has no images/ and masks/ folders" >&2; exit 1; }
extra=()
for folder in instances overlaps; do [ -d "$src/$folder" ] && extra+=("$folder"); done
rm -rf "$out"
for split in train val test; do
  for folder in images masks "${extra[@]}"; do mkdir -p "$out/$split/$folder"; done
done
i=0
for image in "$src"/images/*; do
  name=$(basename "$image")
  stem=${name%.*}
  i=$((i + 1))
  split=train
  [ $((i % period)) -eq "$val" ] && split=val
  [ $((i % period)) -eq "$test" ] && split=test
  ln -s "$image" "$out/$split/images/$name"
  ln -s "$src/masks/$name" "$out/$split/masks/$name"
  for folder in "${extra[@]}"; do
    for file in "$src/$folder/$stem".* "$src/$folder/$stem"_*; do [ -e "$file" ] && ln -s "$file" "$out/$split/$folder/$(basename "$file")"; done
  done
done
echo "split-dataset: $(ls "$out/train/images" | wc -l) train, $(ls "$out/val/images" | wc -l) val, $(ls "$out/test/images" | wc -l) test images in $out"
