// Registers every backend this build has, so that listBackends() and the parity suite see them all. Each backend
// adds one import line here; import this module once at start-up (the CLI and the test suites do).

import { registerBackend } from './index.js';
import { referenceBackend } from './reference.js';
import { gpujsBackend } from './gpujs/index.js';
import { cpuBackend } from './cpu/index.js';

registerBackend(referenceBackend);
// cpu: always registered; unavailableReason() says when its wasm kernels cannot load.
registerBackend(cpuBackend);
// gpu.js: registered only where it loads and starts (gpujsUnavailableReason() says why not).
if (gpujsBackend()) registerBackend(gpujsBackend()!);
