#!/usr/bin/env bash
# Splits the 50 BBBC010 training images (../shared/data/bbbc010/train, or $1) into OUT/train (40 images), OUT/val
# (5 images: A05, A15, B01, B11, B21) and OUT/test (5 images: A10, A20, B06, B16, C02): every 5th well is held out,
# alternately for validation and for the test that nothing during training sees. The per-worm masks (instances/) and
# overlap counts (overlaps/) go with their images. The shipped BBBC010 models were trained with this split and scored
# on OUT/test. Usage: scripts/bbbc010-split.sh [SRC] [OUT]
set -euo pipefail
exec bash "$(dirname "$0")/split-dataset.sh" "${1:-../shared/data/bbbc010/train}" "${2:-runs/bbbc010/data}" 10 5 0
