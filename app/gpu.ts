// Whether this browser can run the models, told in words: a page opened over plain http from another host, a
// browser without WebGPU, one whose WebGPU offers no adapter, or an adapter below the limits the engine's kernels use.

/** Limits the engine's kernels rely on: WebGPU's core defaults, which compatibility-mode adapters go below. */
const required: Partial<Record<keyof GPUSupportedLimits, number>> = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupStorageSize: 16384,
};

/** Why WebGPU cannot be used here, as a sentence for the user; null when an adapter with the limits is available. */
export async function webgpuProblem(): Promise<string | null> {
  if (!isSecureContext) {
    return `WebGPU needs a secure context, and ${location.origin} is not one: open the page over https, or from http://127.0.0.1 or http://localhost (where \`npx wgseg app\` serves it).`;
  }
  if (!navigator.gpu) {
    return 'This browser has no WebGPU (navigator.gpu is undefined). Chrome and Edge 113 or newer have it on Windows, macOS and ChromeOS; '
      + 'on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan; Safari 26 and Firefox 141 (Windows) have it too.';
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    return 'This browser has WebGPU, but navigator.gpu.requestAdapter() returned null: it offers no GPU adapter here '
      + '(a GPU or driver on its blocklist, or WebGPU turned off; chrome://gpu says which).';
  }
  const short = Object.entries(required)
    .filter(([name, min]) => (adapter.limits[name as keyof GPUSupportedLimits] as number) < min!)
    .map(([name, min]) => `${name} is ${adapter.limits[name as keyof GPUSupportedLimits]}, the models need ${min}`);
  if (short.length > 0) return `The WebGPU adapter is too small for the models: ${short.join('; ')}.`;
  return null;
}
