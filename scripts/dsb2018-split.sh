#!/usr/bin/env bash
# Splits the 34 DSB2018 fluorescence images (../shared/data/dsb2018/train, or $1; BBBC038v1, Caicedo et al. 2019, CC0)
# into OUT/train (24 images), OUT/val (5: positions 3, 10, 17, 24, 31 in name order) and OUT/test (5: positions 6, 13,
# 20, 27, 34). Validation chooses checkpoints and postprocessing; the shipped DSB2018 models are scored on OUT/test,
# which nothing during training sees. Usage: scripts/dsb2018-split.sh [SRC] [OUT]
set -euo pipefail
exec bash "$(dirname "$0")/split-dataset.sh" "${1:-../shared/data/dsb2018/train}" "${2:-runs/dsb2018/data}" 7 3 6
