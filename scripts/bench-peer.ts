// PyTorch as a peer of `npm run bench` (scripts/bench.ts), and the issue-23 targets the bench's whole-model rows are
// held to. One Python process serves the whole run: `startTorchPeer` spawns `/usr/bin/python3 scripts/bench_torch.py`
// (PTSLAB_TORCH_PYTHON names another interpreter) and talks JSON lines to it (that file states the protocol); when
// it cannot (PTSLAB_BENCH_TORCH=0, no interpreter, `import torch` failing) it says why, and the bench prints that
// reason in place of every torch row. `lazyTorchPeer` starts it on the first torch case and closes it at the end.
// TARGETS is the table of targets (data); `evaluateTargets` checks them against a run's rows.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The interpreter with torch: Debian's (the python3 on PATH may have none), or PTSLAB_TORCH_PYTHON. */
export const torchPython = (env: NodeJS.ProcessEnv = process.env): string => env.PTSLAB_TORCH_PYTHON ?? '/usr/bin/python3';
/** scripts/bench_torch.py in the source tree (this file runs from dist/scripts). */
export const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/bench_torch.py', import.meta.url));

export interface TorchRequest {
  case: string;
  batch?: number;
  reps?: number;
  arch?: string;
}

export interface TorchReply {
  case: string;
  batch?: number;
  /** Median ms of the reps (null for reps 0: prepared only). */
  ms?: number | null;
  times?: number[];
  /** The case was built and warmed up for this request. */
  prepared?: boolean;
  [k: string]: unknown;
}

export class TorchPeerError extends Error {}

/** The running bench_torch.py: one request at a time, in order. */
export class TorchPeer {
  private readonly waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private readonly lines: string[] = [];
  private exited: string | null = null;
  private stderr = '';
  private queue: Promise<unknown> = Promise.resolve();
  /** torch.__version__ and its thread count, from the ready line. */
  version = '';
  threads = 0;

  private constructor(private readonly child: ChildProcess, readonly python: string) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const w = this.waiting.shift();
      if (w) w.resolve(l);
      else this.lines.push(l);
    });
    child.stderr!.on('data', (d: Buffer) => void (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    const fail = (why: string) => {
      this.exited ??= why;
      for (const w of this.waiting.splice(0)) w.reject(new TorchPeerError(this.exitReason()));
    };
    child.on('error', (e) => fail(`cannot run (${e.message})`));
    child.stdin!.on('error', () => undefined); // EPIPE once it is gone: the 'close' above says why
    child.on('close', (code, signal) => fail(`exited (${signal ?? `code ${code}`})`));
  }

  /** Why the process is gone: how it ended and its last stderr line. */
  exitReason(): string {
    const last = this.stderr.trim().split('\n').pop();
    return `${this.python}: ${this.exited ?? 'running'}${last ? `: ${last}` : ''}`;
  }

  get alive(): boolean {
    return this.exited === null;
  }

  private nextLine(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.exited !== null) return Promise.reject(new TorchPeerError(this.exitReason()));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Spawn bench_torch.py and wait for its ready line; a string (the reason) when torch cannot run. */
  static async start(python: string, env: NodeJS.ProcessEnv): Promise<TorchPeer | string> {
    const child = spawn(python, [TORCH_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const peer = new TorchPeer(child, python);
    let first: Record<string, unknown>;
    try {
      first = JSON.parse(await peer.nextLine()) as Record<string, unknown>;
    } catch (e) {
      child.kill();
      return e instanceof TorchPeerError ? e.message : `${python}: unreadable first line from ${TORCH_SCRIPT} (${(e as Error).message})`;
    }
    if (first.ready !== true) {
      child.kill();
      return `${python}: ${typeof first.error === 'string' ? first.error : JSON.stringify(first)}`;
    }
    peer.version = String(first.torch);
    peer.threads = Number(first.threads);
    return peer;
  }

  /** One request; rejects with TorchPeerError on an {error} reply or a dead process. */
  request(req: TorchRequest): Promise<TorchReply> {
    const run = async () => {
      if (this.exited !== null) throw new TorchPeerError(this.exitReason());
      this.child.stdin!.write(JSON.stringify(req) + '\n');
      const reply = JSON.parse(await this.nextLine()) as TorchReply & { error?: string };
      if (reply.error !== undefined) throw new TorchPeerError(`bench_torch.py ${JSON.stringify(req)}: ${reply.error}`);
      return reply;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** The median ms of `reps` runs of a case at a batch (reps 0: build and warm it up only). */
  async time(caseName: string, batch: number, reps: number): Promise<number | null> {
    return (await this.request({ case: caseName, batch, reps })).ms ?? null;
  }

  /** End the process (stdin closed: it exits after the request in hand) and wait for it. */
  async close(): Promise<void> {
    if (this.exited !== null) return;
    const gone = new Promise<void>((r) => this.child.once('close', () => r()));
    this.child.stdin!.end();
    await gone;
  }
}

/** Start the peer, or say why not ("PTSLAB_BENCH_TORCH=0", no interpreter, torch not importable). */
export async function startTorchPeer(env: NodeJS.ProcessEnv = process.env): Promise<TorchPeer | string> {
  if (env.PTSLAB_BENCH_TORCH === '0') return 'PTSLAB_BENCH_TORCH=0 turns them off';
  return TorchPeer.start(torchPython(env), env);
}

/** The bench's peer: started on the first get(), the same one (or reason) after; close() ends it if it ran. */
export function lazyTorchPeer(env: NodeJS.ProcessEnv = process.env): { get: () => Promise<TorchPeer | string>; close: () => Promise<void> } {
  let started: Promise<TorchPeer | string> | null = null;
  return {
    get: async () => {
      const p = await (started ??= startTorchPeer(env));
      return typeof p === 'string' || p.alive ? p : p.exitReason();
    },
    close: async () => {
      const p = started && (await started);
      if (p && typeof p !== 'string') await p.close();
    },
  };
}

// The targets.

/** A target on one case: time(num engine) / time(den engine) compared with a bound. */
export interface Target {
  name: string;
  case: string;
  num: string;
  den: string;
  op: '<=' | '>=' | '<';
  bound: number;
}

/** Issue 23's whole-model targets, as time ratios within one run. "faster than" is a ratio < 1. */
export const TARGETS: readonly Target[] = [
  { name: 'ResNet-18 train step b8', case: 'resnet18-train-step-b8', num: 'ptslab-cpu', den: 'torch', op: '<=', bound: 2.5 },
  { name: 'MobileNetV2 train step b8', case: 'mobilenetv2-train-step-b8', num: 'ptslab-cpu', den: 'torch', op: '<=', bound: 2.0 },
  { name: 'ResNet-20 FCPTS step b64', case: 'resnet20-fcpts-step-b64', num: 'ptslab-cpu', den: 'torch', op: '<=', bound: 2.0 },
  { name: 'ResNet-18 90% sparse, dense / sparse, b1', case: 'resnet18-s90-infer-b1', num: 'ptslab-cpu', den: 'ptslab-cpu-sparse', op: '>=', bound: 2.5 },
  { name: 'ResNet-18 90% sparse, dense / sparse, b64', case: 'resnet18-s90-infer-b64', num: 'ptslab-cpu', den: 'ptslab-cpu-sparse', op: '>=', bound: 2.5 },
  { name: 'ResNet-18 90% sparse, sparse faster than torch, b1', case: 'resnet18-s90-infer-b1', num: 'ptslab-cpu-sparse', den: 'torch', op: '<', bound: 1 },
];

export interface TargetResult {
  target: Target;
  status: 'met' | 'not met' | 'not measured';
  ratio?: number;
  numMs?: number;
  denMs?: number;
  /** The engines without a row for the case, when not measured. */
  missing?: string[];
}

const holds = (ratio: number, op: Target['op'], bound: number) => (op === '<=' ? ratio <= bound : op === '>=' ? ratio >= bound : ratio < bound);

/** Each target against the rows of a run (a case's row per engine; none: not measured). */
export function evaluateTargets(rows: readonly { case: string; engine: string; ms: number }[], targets: readonly Target[] = TARGETS): TargetResult[] {
  return targets.map((target) => {
    const find = (engine: string) => rows.find((r) => r.case === target.case && r.engine === engine);
    const num = find(target.num), den = find(target.den);
    if (!num || !den) return { target, status: 'not measured', missing: [target.num, target.den].filter((e, i) => ![num, den][i]) };
    const ratio = num.ms / den.ms;
    return { target, status: holds(ratio, target.op, target.bound) ? 'met' : 'not met', ratio, numMs: num.ms, denMs: den.ms };
  });
}

/** One line of the summary: "name: num / den = a / b ms = r (target op bound): met". */
export function formatTarget(r: TargetResult): string {
  const t = r.target;
  const what = `${t.name}: ${t.num} / ${t.den}`;
  const goal = `(target ${t.op} ${t.bound})`;
  if (r.status === 'not measured') return `${what} ${goal}: not measured (no ${r.missing!.join(' or ')} row for ${t.case} in this run)`;
  return `${what} = ${r.numMs!.toFixed(1)} / ${r.denMs!.toFixed(1)} ms = ${r.ratio!.toFixed(2)} ${goal}: ${r.status}`;
}
