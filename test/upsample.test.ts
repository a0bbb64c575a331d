// The checks of test/ops/upsample.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/upsample.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
