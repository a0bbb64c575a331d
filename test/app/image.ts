// The image the app test segments: syntheticBlobs (nuclei-like ellipses on a dark, noisy background) as an 8-bit
// grey PNG, the kind of file a user drops on the page and the CLI reads from a folder.
import { encode } from 'fast-png';
import { syntheticBlobs } from '../../src/train/synthetic.ts';

/** A seeded `size`² PNG of about a dozen blobs, its pixels, and how many blobs it holds. */
export function blobsPng(size: number, seed: number): { png: Uint8Array; pixels: Uint8Array; blobs: number } {
  const { image, count } = syntheticBlobs({ height: size, width: size, blobs: 14, radius: [6, 11], noise: 0.04, seed });
  const data = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(255 * image[i])));
  return { png: encode({ width: size, height: size, data, depth: 8, channels: 1 }), pixels: data, blobs: count };
}
