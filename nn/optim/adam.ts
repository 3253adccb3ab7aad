// Adam and AdamW, PyTorch's rules (torch.optim.Adam / AdamW, non-fused):
//   Adam: g = grad + wd * p (L2);  AdamW: p *= 1 - lr * wd (decoupled)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v), used for v)
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

import { ArgumentError } from '../../core/index.js';
import { Optimizer, type ParamGroup, type ParamsArg, type UpdateContext } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  protected validate(g: ParamGroup<AdamOptions>): void {
    const name = this.constructor.name;
    if (!(g.lr >= 0)) throw new ArgumentError(`${name}: lr must be >= 0, got ${g.lr}`);
    if (!(g.eps >= 0)) throw new ArgumentError(`${name}: eps must be >= 0, got ${g.eps}`);
    if (!(g.betas[0] >= 0 && g.betas[0] < 1 && g.betas[1] >= 0 && g.betas[1] < 1)) throw new ArgumentError(`${name}: betas must be in [0, 1), got ${g.betas}`);
    if (!(g.weightDecay >= 0)) throw new ArgumentError(`${name}: weightDecay must be >= 0, got ${g.weightDecay}`);
  }

  protected update({ p, pOff, g, gOff, n, state }: UpdateContext, o: ParamGroup<AdamOptions>): void {
    const Arr = p.constructor as Float32ArrayConstructor;
    if (state.step === undefined) {
      state.step = 0;
      state.expAvg = new Arr(n);
      state.expAvgSq = new Arr(n);
      if (o.amsgrad) state.maxExpAvgSq = new Arr(n);
    }
    const step = ++state.step;
    const m = state.expAvg as Float32Array;
    const v = state.expAvgSq as Float32Array;
    const vmax = state.maxExpAvgSq as Float32Array | undefined;
    const { lr, eps, weightDecay: wd } = o;
    const [b1, b2] = o.betas;
    const sign = o.maximize ? -1 : 1;
    const stepSize = lr / (1 - b1 ** step);
    const bc2Sqrt = Math.sqrt(1 - b2 ** step);
    for (let i = 0; i < n; i++) {
      let w = p[pOff + i];
      let d = sign * g[gOff + i];
      if (this.decoupled) w *= 1 - lr * wd;
      else d += wd * w;
      m[i] = b1 * m[i] + (1 - b1) * d;
      v[i] = b2 * v[i] + (1 - b2) * d * d;
      let vi = v[i];
      if (vmax) vi = vmax[i] = Math.max(vmax[i], vi);
      p[pOff + i] = w - (stepSize * m[i]) / (Math.sqrt(vi) / bc2Sqrt + eps);
    }
  }
}

export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: ParamsArg<AdamOptions>, o: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, ...o });
  }
}

export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: ParamsArg<AdamOptions>, o: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, ...o });
  }
}
