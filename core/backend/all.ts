// Registers every backend this build has, so that listBackends() and the parity suite see them all. Each backend
// adds one import line here. select.ts imports this module, and the package entry imports select.ts, so
// `import 'ptslab'` registers them all; the CLI and the test suites import it directly. Registering loads nothing
// heavy: the cpu backend's wasm kernels load on first use (or unavailableReason()), gpu.js likewise (gpujsEntry).

import { registerBackend } from './index.js';
import { referenceBackend } from './reference.js';
import { gpujsEntry } from './gpujs/index.js';
import { cpuBackend } from './cpu/index.js';

registerBackend(referenceBackend);
// cpu: always registered; unavailableReason() says when its wasm kernels cannot load.
registerBackend(cpuBackend);
// gpu.js: always registered, loaded lazily; unavailableReason() says when it cannot load or start here.
registerBackend(gpujsEntry);
