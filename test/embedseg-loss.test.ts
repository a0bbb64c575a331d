// The checks of test/ops/embedseg-loss.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/embedseg-loss.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
