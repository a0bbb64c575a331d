#!/usr/bin/env bash
# Packs into .dev/ (ignored; about 40 MB) what a lent GPU machine needs to run wgseg when it has neither Node nor a
# package registry: this machine's node binary and Dawn's linux-x64 dawn.node (xz-compressed), single-file bundles of
# the CLI and the two benchmarks (esbuild, with `webgpu` left external and resolved from .dev/node_modules), and a
# dataset folder (default runs/dsb2018/data, made by scripts/dsb2018-split.sh). scripts/device/run.sh is the command
# run there, from the repository root, with `.dev` and `.gl` carried (README, "On a real GPU").
# Usage: scripts/device/bundle.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-runs/dsb2018/data}
rm -rf .dev && mkdir -p .dev/node_modules/webgpu/dist/linux-x64
bundle() {
  npx esbuild "$1" --bundle --platform=node --format=esm --target=node20 --external:webgpu --log-level=warning \
    "--banner:js=import{createRequire as __cr}from'module';const require=__cr(import.meta.url);" --outfile=".dev/$2"
}
printf "import { main } from '../src/cli/main.ts';\nprocess.exitCode = await main(process.argv.slice(2), { stderr: process.stderr });\n" > .dev/cli-entry.ts
bundle .dev/cli-entry.ts wgseg.mjs
rm .dev/cli-entry.ts
bundle bench/run.ts bench.mjs
bundle bench/assembly.ts assembly.mjs
cp node_modules/webgpu/package.json node_modules/webgpu/index.js .dev/node_modules/webgpu/
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .dev/dawn.node.xz
xz -T0 -6 -c "$(node -p process.execPath)" > .dev/node.xz
if [ -d "$data" ]; then cp -rL "$data" .dev/data; else echo "bundle: no dataset at $data (training steps of run.sh will fail)" >&2; fi
# The device image has the NVIDIA driver's Vulkan ICD but maybe no loader: Debian's loader and GL dispatch libraries,
# unpacked there by run.sh.
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
if ! ls .gl/libvulkan1_*.deb > /dev/null 2>&1; then
  apt-get $o update > /dev/null || { echo "bundle: apt-get update failed: no Vulkan loader for .gl" >&2; exit 1; }
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .dev .gl
