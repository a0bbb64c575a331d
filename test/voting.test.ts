// The checks of test/ops/voting.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/voting.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
