// The marker watershed (src/train/watershed.ts) on cases checkable by hand: two basins split at their ridge, a mask
// that confines the flood, markers outside the mask, unreachable components, first-come order on plateaus.
import { describe, expect, it } from 'vitest';
import { markerWatershed } from '../src/train/watershed.ts';

const grid = (rows: string[]) => rows.map((r) => r.split(' ').map(Number)).flat();

describe('markerWatershed', () => {
  it('two basins meet at the ridge between them', () => {
    // One row: valleys at x = 1 and x = 7, a ridge at x = 5.
    const elevation = [3, 0, 1, 2, 3, 9, 2, 0, 1];
    const markers = [0, 1, 0, 0, 0, 0, 0, 2, 0];
    expect(Array.from(markerWatershed(elevation, markers, null, 1, 9))).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2]);
  });

  it('floods only inside the mask; markers outside it are dropped; unreached pixels stay 0', () => {
    const elevation = new Array<number>(25).fill(0);
    const mask = grid([
      '1 1 0 0 1',
      '1 1 0 0 1',
      '0 0 0 0 1',
      '1 0 1 1 1',
      '1 0 1 1 1',
    ]);
    const markers = grid([
      '3 0 0 5 0',
      '0 0 0 0 0',
      '0 0 0 0 0',
      '0 0 0 0 0',
      '0 0 0 0 4',
    ]);
    expect(Array.from(markerWatershed(elevation, markers, mask, 5, 5))).toEqual(grid([
      '3 3 0 0 4',
      '3 3 0 0 4',
      '0 0 0 0 4',
      '0 0 4 4 4',
      '0 0 4 4 4',
    ]));
  });

  it('on a plateau, the front that arrives first takes the pixel (4-connected, first in first out)', () => {
    // Flat 3×5 image, markers at both ends of the middle row: the middle column goes to whoever reaches it first,
    // which for equal distances is the marker pushed first (the lower pixel index).
    const labels = markerWatershed(new Array<number>(15).fill(0.5), grid(['0 0 0 0 0', '1 0 0 0 2', '0 0 0 0 0']), null, 3, 5);
    expect(Array.from(labels)).toEqual(grid(['1 1 1 2 2', '1 1 1 2 2', '1 1 1 2 2']));
  });

  it('the lower basin floods first and labels the ridge pixels it touches (labels given when a pixel is queued)', () => {
    const elevation = grid([
      '0 0 5 1 1',
      '0 0 5 1 1',
      '0 0 2 1 1',
    ]);
    const markers = grid(['1 0 0 0 2', '0 0 0 0 0', '0 0 0 0 0']);
    // Label 1's basin (0) is flooded before label 2's (1) is entered, and its front queues the ridge column first.
    expect(Array.from(markerWatershed(elevation, markers, null, 3, 5))).toEqual(grid(['1 1 1 2 2', '1 1 1 2 2', '1 1 1 2 2']));
  });

  it('names the input of the wrong size', () => {
    expect(() => markerWatershed([0, 0], [1], null, 1, 2)).toThrow(/markers has 1 pixels, the image 1×2 has 2/);
  });
});
