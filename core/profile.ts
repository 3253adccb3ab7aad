// A per-op profile: where the time of a piece of code goes, by backend kernel. profileOps(fn) runs fn with the
// current backend wrapped in a timing Proxy, made current for fn's duration (withBackend), so every op sees it (ops
// ask backend() on each call, and batch norm's backward keeps the backend its forward saw, the Proxy too). Each
// Backend method call is timed with performance.now and counted, by method name, and for the elementwise kernels by
// op (`binary:mul`, `unary:abs`, `reduce:sum`); convolutions and matrix products are also keyed by their shapes
// (`detail`). Only outermost calls are timed: a kernel that calls another kernel through backend() (or the Proxy)
// counts once, under the outer name. What is left of the wall time is "js/other": tensor bookkeeping, autograd,
// optimizers, the data pipeline and, for an async fn, the time spent waiting in awaits.
//
// An asynchronous device (WebGL queues its draws and runs them at the next readback) would charge an op's work to
// whichever later op waits for it: ProfileOptions.sync (e.g. the GL context's finish) runs at the end of every
// outermost call, inside its time, so each op is charged its own work (and the device loses its overlap with JS).
//
// The Proxy gets the wrapped backend's name, so code that reads backend().name is unchanged, and the registry entry
// under that name is put back afterwards (withBackend registers the object it is given).

import { backend, findBackend, registerBackend, withBackend } from './backend/index.js';
import type { Backend, View } from './backend/types.js';

export interface ProfileRow {
  /** Backend method (with its op for unary/binary/reduce), or 'js/other' for the time outside backend calls. */
  name: string;
  calls: number;
  ms: number;
  /** ms / wall time. */
  share: number;
}

export interface Profile {
  /** Wall time of fn, ms. */
  wallMs: number;
  /** Time inside (outermost) backend calls, ms. */
  backendMs: number;
  /** Backend calls counted (outermost only). */
  calls: number;
  /** By method (and op), plus 'js/other', sorted by time, largest first. */
  rows: ProfileRow[];
  /** conv2d / conv2dBackwardInput / conv2dBackwardWeight / matmul by shape key, sorted by time. */
  detail: ProfileRow[];
}

type AnyFn = (...args: unknown[]) => unknown;

const dims = (s: readonly number[]) => s.join('x');
const viewShape = (v: unknown): string => dims((v as View).shape);
const convParams = (p: unknown): string => {
  const q = p as { stride: readonly number[]; padding: readonly number[]; groups: number };
  return `s${q.stride[0]} p${q.padding[0]}${q.groups > 1 ? ` g${q.groups}` : ''}`;
};

/** The row name of a call: the method, with the op for the kernels that take one first. */
function rowName(method: string, args: readonly unknown[]): string {
  return method === 'unary' || method === 'binary' || method === 'reduce' ? `${method}:${String(args[0])}` : method;
}

/** The shape key of a conv or matmul call (null for the other methods). */
function shapeKey(method: string, args: readonly unknown[]): string | null {
  switch (method) {
    case 'conv2d':
      return `conv2d x${viewShape(args[0])} w${viewShape(args[1])} ${convParams(args[3])}`;
    case 'conv2dBackwardInput':
      return `conv2dBackwardInput gy${viewShape(args[0])} w${viewShape(args[1])} ${convParams(args[3])}`;
    case 'conv2dBackwardWeight':
      return `conv2dBackwardWeight gy${viewShape(args[0])} w${dims(args[2] as number[])} ${convParams(args[3])}`;
    case 'matmul':
      return `matmul ${viewShape(args[0])} @ ${viewShape(args[1])}`;
    default:
      return null;
  }
}

/** Collects timings; `proxy` is the backend to make current. */
class Recorder {
  readonly rows = new Map<string, { calls: number; ms: number }>();
  readonly detail = new Map<string, { calls: number; ms: number }>();
  backendMs = 0;
  calls = 0;
  private depth = 0;
  readonly proxy: Backend;

  constructor(readonly base: Backend, private readonly sync?: () => void) {
    const wrapped = new Map<PropertyKey, AnyFn>();
    this.proxy = new Proxy(base, {
      get: (target, prop) => {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== 'function' || prop === 'unavailableReason') return v;
        let w = wrapped.get(prop);
        if (!w) {
          w = this.wrap(String(prop), v as AnyFn, target);
          wrapped.set(prop, w);
        }
        return w;
      },
    });
  }

  private wrap(method: string, fn: AnyFn, target: Backend): AnyFn {
    return (...args: unknown[]) => {
      // A kernel calling another kernel: the inner call is part of the outer's time.
      if (this.depth > 0) return fn.apply(target, args);
      this.depth++;
      const t0 = performance.now();
      try {
        const out = fn.apply(target, args);
        this.sync?.();
        return out;
      } finally {
        const ms = performance.now() - t0;
        this.depth--;
        this.backendMs += ms;
        this.calls++;
        add(this.rows, rowName(method, args), ms);
        const key = shapeKey(method, args);
        if (key !== null) add(this.detail, key, ms);
      }
    };
  }

  /** Forget everything recorded so far (ProfileControl.reset). */
  clear(): void {
    this.rows.clear();
    this.detail.clear();
    this.backendMs = 0;
    this.calls = 0;
  }

  profile(wallMs: number): Profile {
    const table = (m: Map<string, { calls: number; ms: number }>): ProfileRow[] =>
      [...m].map(([name, r]) => ({ name, calls: r.calls, ms: r.ms, share: wallMs > 0 ? r.ms / wallMs : 0 })).sort((a, b) => b.ms - a.ms);
    const otherMs = Math.max(0, wallMs - this.backendMs);
    const rows = [...table(this.rows), { name: 'js/other', calls: 0, ms: otherMs, share: wallMs > 0 ? otherMs / wallMs : 0 }].sort((a, b) => b.ms - a.ms);
    return { wallMs, backendMs: this.backendMs, calls: this.calls, rows, detail: table(this.detail) };
  }
}

function add(m: Map<string, { calls: number; ms: number }>, key: string, ms: number): void {
  const r = m.get(key);
  if (r) {
    r.calls++;
    r.ms += ms;
  } else m.set(key, { calls: 1, ms });
}

/**
 * Handed to the profiled fn: reset() starts the profile over from now (e.g. after warm-up iterations), snapshot()
 * is the profile from the last reset (or the start) until now.
 */
export interface ProfileControl {
  reset(): void;
  snapshot(): Profile;
}

export interface ProfileOptions {
  /** Wait for the device's queued work at the end of every op, inside its time (a GL context's finish()). */
  sync?: () => void;
}

/** Run fn with a timing Proxy around `backend()`, then put the registry entry of its name back as it was. */
function scoped<T>(fn: (ctl: ProfileControl) => T, opts: ProfileOptions): { out: T; final: () => Profile } {
  const base = backend();
  const registered = findBackend(base.name);
  const rec = new Recorder(base, opts.sync);
  const restore = () => registerBackend(registered ?? base);
  let t0 = performance.now();
  const ctl: ProfileControl = {
    reset: () => {
      rec.clear();
      t0 = performance.now();
    },
    snapshot: () => rec.profile(performance.now() - t0),
  };
  let out: T;
  try {
    out = withBackend(rec.proxy, () => fn(ctl));
  } catch (e) {
    restore();
    throw e;
  }
  let final: Profile | null = null;
  const finish = () => {
    final ??= ctl.snapshot();
    restore();
  };
  if (out instanceof Promise) out = out.finally(finish) as T;
  else finish();
  return { out, final: () => final ?? ctl.snapshot() };
}

/** Profile a synchronous fn by backend kernel. */
export function profileOps<T>(fn: (ctl: ProfileControl) => T, opts: ProfileOptions = {}): { result: T; profile: Profile } {
  const { out, final } = scoped(fn, opts);
  if (out instanceof Promise) {
    out.catch(() => {});
    throw new TypeError('profileOps: fn returned a promise; use profileOpsAsync for an async fn');
  }
  return { result: out, profile: final() };
}

/** Profile an async fn by backend kernel (the wall time runs until its promise settles; awaits count as js/other). */
export async function profileOpsAsync<T>(fn: (ctl: ProfileControl) => Promise<T>, opts: ProfileOptions = {}): Promise<{ result: T; profile: Profile }> {
  const { out, final } = scoped(fn, opts);
  const result = await out;
  return { result, profile: final() };
}

export interface FormatOptions {
  /** Rows shown (default 20; the rest are summed into one line). */
  top?: number;
  /** Also list the conv/matmul shape keys (default false), `top` of them. */
  detail?: boolean;
  /** Divide ms by this (e.g. iterations) for a per-iteration column. */
  per?: number;
}

/** The profile as a text table: name, calls, total ms, share of the wall time (and ms per `per` when given). */
export function formatProfile(p: Profile, o: FormatOptions = {}): string {
  const top = o.top ?? 20;
  const per = o.per && o.per > 0 ? o.per : 0;
  const lines: string[] = [];
  const head = (first: string) => `${first.padEnd(64)} ${'calls'.padStart(8)} ${'ms'.padStart(10)} ${'share'.padStart(7)}${per ? ` ${'ms/iter'.padStart(9)}` : ''}`;
  const line = (r: ProfileRow) =>
    `${r.name.length > 64 ? `${r.name.slice(0, 61)}...` : r.name.padEnd(64)} ${String(r.calls).padStart(8)} ${r.ms.toFixed(1).padStart(10)} ${`${(100 * r.share).toFixed(1)}%`.padStart(7)}${per ? ` ${(r.ms / per).toFixed(2).padStart(9)}` : ''}`;
  const section = (rows: readonly ProfileRow[]) => {
    rows.slice(0, top).forEach((r) => lines.push(line(r)));
    const rest = rows.slice(top);
    if (rest.length) {
      const ms = rest.reduce((a, r) => a + r.ms, 0);
      lines.push(line({ name: `(${rest.length} more)`, calls: rest.reduce((a, r) => a + r.calls, 0), ms, share: p.wallMs > 0 ? ms / p.wallMs : 0 }));
    }
  };
  lines.push(head('op'));
  section(p.rows);
  lines.push(`wall ${p.wallMs.toFixed(1)} ms, in backend calls ${p.backendMs.toFixed(1)} ms (${p.calls} calls)${per ? `, ${(p.wallMs / per).toFixed(1)} ms per iteration over ${per}` : ''}`);
  if (o.detail && p.detail.length) {
    lines.push('', head('conv / matmul by shape'));
    section(p.detail);
  }
  return lines.join('\n');
}
