// Kernel tuning (src/engine/tuning.ts): WGSEG_TUNING's parser, the checks on each key, and an engine's defaults.
import { describe, expect, it } from 'vitest';
import { checkTuningFits, DEFAULT_TUNING, parseTuning } from '../src/engine/tuning.ts';
import { testEngine } from './support/engine.ts';

describe('tuning', () => {
  it('parses key=value lists', () => {
    expect(parseTuning('matmulBlock=4, matmulTile=64')).toEqual({ matmulBlock: 4, matmulTile: 64 });
    expect(parseTuning('convWeightGradWorkgroups=1024,')).toEqual({ convWeightGradWorkgroups: 1024 });
    expect(parseTuning('')).toEqual({});
  });

  it('names what is wrong', () => {
    expect(() => parseTuning('matmulBlock=6')).toThrow("tuning: matmulBlock must be 4 or 8, got 6");
    expect(() => parseTuning('matmulTile=96')).toThrow('tuning: matmulTile must be 32, 64 or 128, got 96');
    expect(() => parseTuning('convWeightGradWorkgroups=0.5')).toThrow('convWeightGradWorkgroups must be an integer from 1 to 65535');
    expect(() => parseTuning('tile=64')).toThrow("tuning: unknown key 'tile'");
    expect(() => parseTuning('matmulBlock')).toThrow("tuning: 'matmulBlock' is not key=value");
    expect(() => parseTuning('matmulBlock=eight')).toThrow("tuning: matmulBlock must be a number, got 'eight'");
    expect(() => parseTuning('toString=1')).toThrow("unknown key 'toString'");
  });

  it("refuses matmul workgroups larger than a device's limits", () => {
    const browserLike = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupSizeY: 256 } as GPUSupportedLimits;
    expect(() => checkTuningFits({ ...DEFAULT_TUNING, matmulBlock: 4 }, browserLike)).toThrow(
      'tuning: matmulTile 128 with matmulBlock 4 needs 32×32 invocations per workgroup; this device allows 256',
    );
    expect(() => checkTuningFits(DEFAULT_TUNING, browserLike)).not.toThrow();
    expect(() => checkTuningFits({ ...DEFAULT_TUNING, matmulBlock: 4, matmulTile: 64 }, browserLike)).not.toThrow();
    const narrow = { ...browserLike, maxComputeWorkgroupSizeY: 8 };
    expect(() => checkTuningFits(DEFAULT_TUNING, narrow)).toThrow('this device allows 64');
  });

  it('an engine starts from the defaults; setTuning checks, returns what it replaced, and the tuning is read-only', async () => {
    const e = await testEngine();
    expect(e.tuning).toEqual(DEFAULT_TUNING);
    const before = e.setTuning({ matmulBlock: 4 });
    try {
      expect(e.tuning.matmulBlock).toBe(4);
      expect(e.tuning.matmulTile).toBe(before.matmulTile);
      expect(() => e.setTuning({ matmulTile: 100 as 64 })).toThrow('matmulTile must be 32, 64 or 128');
      expect(e.tuning.matmulBlock).toBe(4);
      expect(() => ((e.tuning as { matmulBlock: number }).matmulBlock = 6)).toThrow(TypeError);
    } finally {
      e.setTuning(before);
    }
    expect(e.tuning).toEqual(before);
  });
});
