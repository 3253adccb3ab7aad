// The cpu backend's job table: imports every module that defines jobs (defineJob, jobs.ts), then seals the table,
// numbering the jobs by name. The main thread (cpu/index.ts) and every pool worker (thread-worker.ts) import this
// module, so both number the jobs alike; a job whose module is missing here is refused by runJob, or, when the main
// thread imported it some other way, stops the pool from starting. A new job module is one import line below.

import './conv-direct.js';
import './conv.js';
import './sparse.js';
import './gemm.js';
import './norm.js';
import './pool2d.js';
import { sealJobTable } from './jobs.js';

sealJobTable();
