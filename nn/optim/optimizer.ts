// The optimizer base: parameter groups (each with its own lr, weight decay, ...), per-parameter state, zeroGrad,
// and post-step hooks. step() runs the subclass's update for each parameter with a gradient, under noGrad and in
// place on the parameter's own storage (parameters are contiguous leaves), then calls the post-step hooks in order;
// zeroMasked(masks) is a ready-made hook that keeps pruned weights at exactly zero.

import { ArgumentError, hostElements, where, type Storage } from '../../core/index.js';
import type { HookHandle } from '../module.js';
import { Tensor, flatData, noGrad } from '../tensor-utils.js';

export type ParamGroup<O> = O & {
  params: Tensor[];
  /** The group's lr before any scheduler touched it (set by the first scheduler, as PyTorch's initial_lr). */
  initialLr?: number;
};

export type ParamsArg<O> = Iterable<Tensor> | Array<Partial<O> & { params: Iterable<Tensor> }>;

export type PostStepHook = (optimizer: Optimizer<any>) => void;

/** What an update sees for one parameter: its data (offset into storage), its gradient (contiguous) and state. */
export interface UpdateContext {
  p: Storage;
  pOff: number;
  g: Storage;
  gOff: number;
  n: number;
  /** Per-parameter state, created empty on the first step. */
  state: Record<string, any>;
}

let nextHook = 0;

export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: Array<ParamGroup<O>>;
  readonly state = new Map<Tensor, Record<string, any>>();
  private readonly hooks = new Map<number, PostStepHook>();

  constructor(params: ParamsArg<O>, readonly defaults: O) {
    const list = [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new ArgumentError(`${new.target.name}: got an empty parameter list`);
    const groups = list[0] instanceof Tensor ? [{ params: list as Tensor[] }] : (list as Array<Partial<O> & { params: Iterable<Tensor> }>);
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g, i) => {
      const ps = [...g.params];
      for (const p of ps) {
        if (!(p instanceof Tensor)) throw new ArgumentError(`${new.target.name}: group ${i} holds something that is not a Tensor`);
        if (!p.isLeaf || !p.isContiguous) throw new ArgumentError(`${new.target.name}: parameters must be contiguous leaf tensors; group ${i} has ${p.toString()}`);
        if (seen.has(p)) throw new ArgumentError(`${new.target.name}: a parameter appears in more than one group`);
        seen.add(p);
      }
      return { ...defaults, ...g, params: ps } as ParamGroup<O>;
    });
    for (const g of this.paramGroups) this.validate(g);
  }

  /** Check a group's options; throws ArgumentError naming the bad value. */
  protected abstract validate(group: ParamGroup<O>): void;

  /**
   * The update for a parameter (or gradient) that lives on a device, written with tensor ops so that it runs there
   * (copy_ writes p in place). Optimizers without one refuse device parameters with an error naming the device.
   */
  protected updateOnDevice(p: Tensor, _g: Tensor, _state: Record<string, any>, _group: ParamGroup<O>): void {
    hostElements(p.isHost ? p.grad! : p, `${this.constructor.name} step`);
  }

  /** Update one parameter in place from its gradient. */
  protected abstract update(ctx: UpdateContext, group: ParamGroup<O>): void;

  /** One optimisation step over every parameter that has a gradient, then the post-step hooks. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          if (p.grad === null) continue;
          let state = this.state.get(p);
          if (!state) this.state.set(p, (state = {}));
          if (!p.isHost || !p.grad.isHost) {
            this.updateOnDevice(p, p.grad, state, group);
            continue;
          }
          const g = flatData(p.grad, 'optimizer step');
          this.update({ p: hostElements(p, 'optimizer step'), pOff: p.offset, g: g.data, gOff: g.offset, n: p.size, state }, group);
        }
      }
      for (const h of this.hooks.values()) h(this);
    });
  }

  /** Drop gradients (setToNone, the default, as PyTorch 2) or fill them with zeros. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (setToNone) p.grad = null;
        else if (p.grad) p.grad = noGrad(() => p.grad!.mul(0));
      }
    }
  }

  /** Run hook after every step (e.g. re-apply sparsity masks); returns a handle to remove it. */
  addPostStepHook(hook: PostStepHook): HookHandle {
    const id = nextHook++;
    this.hooks.set(id, hook);
    return { remove: () => void this.hooks.delete(id) };
  }

  /** Every parameter of every group. */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }
}

/**
 * A post-step hook that multiplies each masked parameter by its 0/1 mask (same shape), so pruned weights stay exactly
 * zero whatever the update did (momentum, weight decay, Adam's moments).
 */
export function zeroMasked(masks: Map<Tensor, Tensor>): PostStepHook {
  for (const [p, m] of masks) {
    if (m.size !== p.size || m.shape.some((d, i) => d !== p.shape[i])) {
      throw new ArgumentError(`zeroMasked: mask [${m.shape.join(', ')}] does not match parameter [${p.shape.join(', ')}]`);
    }
  }
  return () => {
    for (const [p, m] of masks) {
      if (!p.isHost || !m.isHost) {
        // on a device: p = m == 0 ? 0 : p, with its kernels
        p.copy_(where(m.eq(0), 0, p).reshape(p.shape));
        continue;
      }
      const md = flatData(m, 'zeroMasked');
      const pd = hostElements(p, 'zeroMasked');
      for (let i = 0; i < p.size; i++) if (md.data[md.offset + i] === 0) pd[p.offset + i] = 0;
    }
  };
}
