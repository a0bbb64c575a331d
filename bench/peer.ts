// TensorFlow.js's WebGPU backend on the same Dawn instance as our engine: the peer in every benchmark table.
// It is a devDependency for figures only; the engine never uses it.
import type { Runner } from './harness.ts';

type TF = typeof import('@tensorflow/tfjs-core');

export async function loadPeer(gpu: GPU): Promise<TF> {
  // tfjs-backend-webgpu looks for navigator.gpu, which Node lacks.
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialize');
  return tf;
}

/** A peer runner: `op` builds one execution from tensors made once by `setup`. */
export function peerRunner<T>(tf: TF, setup: () => T, op: (inputs: T) => unknown): Runner {
  const inputs = setup();
  const backend = tf.backend() as unknown as {
    commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void; submitQueue(): void; device: GPUDevice;
  };
  return {
    run: () => {
      tf.tidy(() => {
        op(inputs);
      });
    },
    sync: async () => {
      // What tfjs does before its own submits: a pass left open invalidates the command buffer. tfjs submits by itself
      // every few dispatches (and leaves no encoder then), so there may be nothing left to submit.
      if (backend.commandEncoder) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
      await backend.device.queue.onSubmittedWorkDone();
    },
    dispose: () => tf.dispose(inputs as never),
  };
}
