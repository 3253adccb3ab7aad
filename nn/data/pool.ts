// The decode worker pool: a few persistent node:worker_threads that read, decode and transform image files, so the
// main thread (and the compute backend's own workers) are never starved by JPEG decoding. One shared pool, created
// on first use, sized small (PTSLAB_DECODE_WORKERS, else a quarter of the cores, 1 to 4); workers are unref'd while
// idle so they never keep the process alive, and shutdownDecodePool() is the one place that stops them.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DecodeReply, DecodeTask } from './decode-worker.js';
import type { Transform } from './transforms.js';
import { DataError } from './types.js';

interface Pending {
  task: DecodeTask;
  resolve: (r: { data: Float32Array; shape: [number, number, number] }) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Pending | null;
}

export class DecodePool {
  private slots: Slot[] = [];
  private queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(readonly size: number) {
    for (let k = 0; k < size; k++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./decode-worker.js', import.meta.url));
    const slot: Slot = { worker, busy: null };
    worker.unref();
    worker.on('message', (reply: DecodeReply) => {
      const p = slot.busy;
      slot.busy = null;
      if (p && p.task.id === reply.id) {
        if ('error' in reply) {
          const e = reply.error.name === 'DataError' ? new DataError(reply.error.message) : new Error(`${p.task.file}: ${reply.error.message}`);
          p.reject(e);
        } else p.resolve({ data: reply.data, shape: reply.shape });
      }
      this.pump(slot);
    });
    worker.on('error', (err) => {
      // A crashed worker: fail its task, replace it, keep going.
      const p = slot.busy;
      slot.busy = null;
      p?.reject(new DataError(`decode worker crashed on ${p.task.file}: ${err.message}`));
      const k = this.slots.indexOf(slot);
      if (k >= 0 && !this.closed) {
        this.slots[k] = this.spawn();
        this.pump(this.slots[k]);
      }
    });
    return slot;
  }

  private pump(slot: Slot): void {
    const next = this.queue.shift();
    if (!next) {
      slot.worker.unref();
      return;
    }
    slot.busy = next;
    slot.worker.ref();
    slot.worker.postMessage(next.task);
  }

  /** Decode and transform one file off the main thread. */
  run(file: string, transform: Transform, seed: number): Promise<{ data: Float32Array; shape: [number, number, number] }> {
    if (this.closed) return Promise.reject(new DataError(`decode pool is shut down (decoding ${file})`));
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, file, transform, seed }, resolve, reject });
      const idle = this.slots.find((s) => s.busy === null);
      if (idle) this.pump(idle);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new DataError(`decode pool shut down before decoding ${p.task.file}`));
    // A ref'd timer keeps the event loop alive while the workers exit (an unref'd worker's exit would not, and the
    // process could end in the middle of the caller's await); terminate() is not waited for beyond 5 s.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      const exits = Promise.all(this.slots.map((s) => (s.worker.ref(), s.worker.terminate())));
      await Promise.race([exits, new Promise((r) => setTimeout(r, 5000))]);
    } finally {
      clearInterval(keepAlive);
    }
    this.slots = [];
  }
}

let shared: DecodePool | null = null;

export function defaultDecodeWorkers(): number {
  const env = Number(process.env.PTSLAB_DECODE_WORKERS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 4)));
}

/** The shared pool, started on first use. */
export function decodePool(): DecodePool {
  shared ??= new DecodePool(defaultDecodeWorkers());
  return shared;
}

/** Stop the shared pool's workers (a later decodePool() starts a fresh one). */
export async function shutdownDecodePool(): Promise<void> {
  const p = shared;
  shared = null;
  await p?.close();
}
