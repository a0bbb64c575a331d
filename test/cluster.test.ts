// The checks of test/ops/cluster.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/cluster.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
