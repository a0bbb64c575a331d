// How the browser tests launch Debian's headless Chromium with WebGPU (test/browser/run.ts, test/app/run.ts).
export const CHROMIUM = '/usr/bin/chromium';

// Headless Chromium's WebGPU on Linux: --enable-unsafe-webgpu exposes it and turns Dawn's adapter blocklist off.
// Dawn then lists Mesa's lavapipe (chrome://gpu, "Dawn Info") but Chromium only takes adapters that can import
// external images, which needs VK_KHR_external_semaphore_fd, and lavapipe has none; so it falls back to SwiftShader,
// which --enable-unsafe-swiftshader allows. On a machine with a GPU the same flags pick the GPU, and
// --ignore-gpu-blocklist keeps Chromium's driver blocklist from refusing it. No Vulkan/ANGLE flags are needed: Dawn
// talks to Vulkan itself.
export const FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--ignore-gpu-blocklist',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  // Root cannot run Chromium's sandbox.
  ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
];
