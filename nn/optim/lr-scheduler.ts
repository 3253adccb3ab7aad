// Learning-rate schedules stepped once per iteration (scheduler.step() after optimizer.step()), in closed form over
// the step count t, as PyTorch's schedulers: building one sets every group's lr to its value at t = 0 (and records
// the group's initialLr); step() advances t and sets the lr again. Cosine with linear warm-up, step decay, constant
// (PyTorch's ConstantLR: a factor for the first totalIters steps, then the base lr) and a LambdaLR for anything else.

import { ArgumentError } from '../../core/index.js';
import type { Optimizer } from './optimizer.js';

export abstract class LRScheduler {
  /** Number of step() calls so far. */
  lastStep = 0;
  readonly baseLrs: number[];

  constructor(readonly optimizer: Optimizer<{ lr: number }>) {
    this.baseLrs = optimizer.paramGroups.map((g) => (g.initialLr ??= g.lr));
  }

  /** The lr of a group with base lr `base` at step t. */
  protected abstract lrAt(t: number, base: number): number;

  /** Set every group's lr for the current step (subclasses call it at the end of their constructor). */
  protected apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = this.lrAt(this.lastStep, this.baseLrs[i])));
  }

  step(): void {
    this.lastStep++;
    this.apply();
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastStep: number } {
    return { lastStep: this.lastStep };
  }

  loadStateDict(s: { lastStep: number }): void {
    this.lastStep = s.lastStep;
    this.apply();
  }
}

/** lr = base * fn(t). */
export class LambdaLR extends LRScheduler {
  constructor(optimizer: Optimizer<{ lr: number }>, private readonly fn: (t: number) => number) {
    super(optimizer);
    this.apply();
  }

  protected lrAt(t: number, base: number): number {
    return base * this.fn(t);
  }
}

export interface CosineWarmupOptions {
  /** Total number of iterations; the lr reaches minLr at t = totalSteps and stays there. */
  totalSteps: number;
  /** Linear warm-up length (default 0). */
  warmupSteps?: number;
  /** Warm-up starts at base * warmupStartFactor (default 0.01) and reaches base at t = warmupSteps. */
  warmupStartFactor?: number;
  minLr?: number;
}

/**
 * Linear warm-up then cosine decay: t < W: base * (s + (1 - s) t / W); then
 * minLr + (base - minLr) (1 + cos(pi min(1, (t - W) / (T - W)))) / 2. Equals PyTorch's SequentialLR of LinearLR and
 * CosineAnnealingLR(T_max = T - W, eta_min = minLr).
 */
export class CosineWarmupLR extends LRScheduler {
  private readonly o: Required<CosineWarmupOptions>;

  constructor(optimizer: Optimizer<{ lr: number }>, o: CosineWarmupOptions) {
    super(optimizer);
    this.o = { warmupSteps: 0, warmupStartFactor: 0.01, minLr: 0, ...o };
    const { totalSteps, warmupSteps } = this.o;
    if (!(Number.isInteger(totalSteps) && totalSteps > 0 && Number.isInteger(warmupSteps) && warmupSteps >= 0 && warmupSteps <= totalSteps)) {
      throw new ArgumentError(`CosineWarmupLR: need integers 0 <= warmupSteps <= totalSteps, totalSteps > 0; got warmupSteps ${warmupSteps}, totalSteps ${totalSteps}`);
    }
    this.apply();
  }

  protected lrAt(t: number, base: number): number {
    const { totalSteps: T, warmupSteps: W, warmupStartFactor: s, minLr } = this.o;
    if (t < W) return base * (s + ((1 - s) * t) / W);
    const progress = T === W ? 1 : Math.min(1, (t - W) / (T - W));
    return minLr + ((base - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }
}

/** base * gamma^floor(t / stepSize), PyTorch's StepLR. */
export class StepLR extends LRScheduler {
  constructor(optimizer: Optimizer<{ lr: number }>, private readonly o: { stepSize: number; gamma?: number }) {
    super(optimizer);
    if (!(Number.isInteger(o.stepSize) && o.stepSize > 0)) throw new ArgumentError(`StepLR: stepSize must be a positive integer, got ${o.stepSize}`);
    this.apply();
  }

  protected lrAt(t: number, base: number): number {
    return base * (this.o.gamma ?? 0.1) ** Math.floor(t / this.o.stepSize);
  }
}

/** base * factor for t < totalIters, then base (PyTorch's ConstantLR; the defaults keep the lr constant). */
export class ConstantLR extends LRScheduler {
  constructor(optimizer: Optimizer<{ lr: number }>, private readonly o: { factor?: number; totalIters?: number } = {}) {
    super(optimizer);
    this.apply();
  }

  protected lrAt(t: number, base: number): number {
    return t < (this.o.totalIters ?? 0) ? base * (this.o.factor ?? 1) : base;
  }
}
