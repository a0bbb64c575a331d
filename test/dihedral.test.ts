// The checks of test/ops/dihedral.ts on Node (Dawn); the Deno and browser runners run the same list.
import { checks } from './ops/dihedral.ts';
import { registerChecks } from './support/register.ts';

registerChecks(checks);
