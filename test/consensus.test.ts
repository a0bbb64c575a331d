// The checks of test/ops/consensus.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/consensus.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
