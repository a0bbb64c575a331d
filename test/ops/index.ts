// Every op family's checks, for the runners that do not discover test files (Deno, the browser page). vitest runs
// each family from its test/NAME.test.ts.
import type { Check } from '../support/suite.ts';
import { checks as augment } from './augment.ts';
import { checks as batchnorm } from './batchnorm.ts';
import { checks as cluster } from './cluster.ts';
import { checks as consensus } from './consensus.ts';
import { checks as conv } from './conv.ts';
import { checks as deformConv } from './deform-conv.ts';
import { checks as dice } from './dice.ts';
import { checks as dihedral } from './dihedral.ts';
import { checks as chain } from './chain.ts';
import { checks as elementwise } from './elementwise.ts';
import { checks as gather } from './gather.ts';
import { checks as embedsegLoss } from './embedseg-loss.ts';
import { checks as focalLoss } from './focal-loss.ts';
import { checks as init } from './init.ts';
import { checks as instance } from './instance.ts';
import { checks as jaccard } from './jaccard.ts';
import { checks as lovasz } from './lovasz.ts';
import { checks as matmul } from './matmul.ts';
import { checks as optim } from './optim.ts';
import { checks as patchTargets } from './patch-targets.ts';
import { checks as peaks } from './peaks.ts';
import { checks as pool } from './pool.ts';
import { checks as random } from './random.ts';
import { checks as reduce } from './reduce.ts';
import { checks as shape } from './shape.ts';
import { checks as softmax } from './softmax.ts';
import { checks as sort } from './sort.ts';
import { checks as upsample } from './upsample.ts';
import { checks as voting } from './voting.ts';

export const opFamilies: Record<string, Check[]> = {
  elementwise,
  chain,
  reduce,
  matmul,
  softmax,
  shape,
  conv,
  'deform-conv': deformConv,
  pool,
  upsample,
  gather,
  batchnorm,
  random,
  init,
  optim,
  sort,
  lovasz,
  dihedral,
  jaccard,
  instance,
  peaks,
  voting,
  cluster,
  'embedseg-loss': embedsegLoss,
  'patch-targets': patchTargets,
  consensus,
  'focal-loss': focalLoss,
  dice,
  augment,
};
