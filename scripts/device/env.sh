# Sourced by scripts/device/run.sh and tune.sh on a lent NVIDIA machine, from the repository root with .dev and .gl
# carried: unpacks node and Dawn into .dev, puts node on PATH, cds into .dev, and checks that Dawn finds an NVIDIA
# adapter (Debian's Vulkan loader from .gl where the image's own finds none). Needs el() and T0; NOCHECK=1 skips the
# NVIDIA check.
GL=$PWD/.gl
cd .dev || { echo "run.sh: no .dev folder (run scripts/device/bundle.sh and carry .dev)"; exit 2; }
if [ -f node.xz ] && ! [ -x node ]; then
python3 -c "
import lzma, os, shutil
os.makedirs('node_modules/webgpu/dist/linux-x64', exist_ok=True)
for a, b in [('node.xz', 'node'), ('dawn.node.xz', 'node_modules/webgpu/dist/linux-x64/dawn.node')]:
    shutil.copyfileobj(lzma.open(a), open(b, 'wb'))"
chmod +x node; fi
export PATH=$PWD:$PATH
el "node $(node --version)"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.total --format=csv,noheader 2>&1
probe(){ timeout 60 node -e "import('webgpu').then(async({create,globals})=>{Object.assign(globalThis,globals);const g=create([]);const a=await g.requestAdapter({powerPreference:'high-performance'});console.log(a?JSON.stringify({vendor:a.info.vendor,arch:a.info.architecture,device:a.info.device,desc:a.info.description}):'NO ADAPTER');process.exit(0)})" 2>&1 | grep -v "^Warning" | tail -3; }
P=$(probe); echo "$P"
# The image's own Vulkan loader first; Debian's (carried in .gl) only where it finds no NVIDIA adapter, then the
# driver's ICD named explicitly.
if [ -z "${NOCHECK:-}" ] && ! echo "$P" | grep -qi nvidia; then
  debs=("$GL"/*.deb)
  if [ ${#debs[@]} -gt 0 ]; then for f in "${debs[@]}"; do dpkg -x "$f" /; done; ldconfig; P=$(probe); echo "with .gl: $P"; fi
fi
if [ -z "${NOCHECK:-}" ] && ! echo "$P" | grep -qi nvidia; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  P=$(probe); echo "retry: $P"; ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ 2>&1
fi
[ -n "${NOCHECK:-}" ] || echo "$P" | grep -qi nvidia || { el "no NVIDIA adapter; stopping"; exit 3; }
