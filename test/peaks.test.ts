// The checks of test/ops/peaks.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/peaks.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
