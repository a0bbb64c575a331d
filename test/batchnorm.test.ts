// The checks of test/ops/batchnorm.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/batchnorm.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
