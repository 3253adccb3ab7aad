// Registers every backend this build has, so that listBackends() and the parity suite see them all. Each backend
// adds one import line here; import this module once at start-up (the CLI and the test suites do).

import { registerBackend } from './index.js';
import { referenceBackend } from './reference.js';

registerBackend(referenceBackend);
