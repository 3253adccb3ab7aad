// SGD with momentum, dampening, Nesterov momentum and (coupled, L2) weight decay, PyTorch's torch.optim.SGD rule:
//   g = grad + wd * p;  buf = g on the first step, else momentum * buf + (1 - dampening) * g;
//   g = nesterov ? g + momentum * buf : buf;  p -= lr * g

import { ArgumentError } from '../../core/index.js';
import { Optimizer, type ParamGroup, type ParamsArg, type UpdateContext } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsArg<SGDOptions>, o: Partial<SGDOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...o });
  }

  protected validate(g: ParamGroup<SGDOptions>): void {
    if (!(g.lr >= 0)) throw new ArgumentError(`SGD: lr must be >= 0, got ${g.lr}`);
    if (!(g.momentum >= 0)) throw new ArgumentError(`SGD: momentum must be >= 0, got ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new ArgumentError(`SGD: weightDecay must be >= 0, got ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new ArgumentError('SGD: nesterov needs momentum > 0 and dampening 0');
  }

  protected update({ p, pOff, g, gOff, n, state }: UpdateContext, o: ParamGroup<SGDOptions>): void {
    const { lr, momentum, dampening, weightDecay: wd, nesterov } = o;
    const sign = o.maximize ? -1 : 1;
    let buf = state.momentumBuffer as Float32Array | Float64Array | undefined;
    const first = momentum !== 0 && buf === undefined;
    if (first) buf = state.momentumBuffer = new (p.constructor as Float32ArrayConstructor)(n);
    for (let i = 0; i < n; i++) {
      const w = p[pOff + i];
      let d = sign * g[gOff + i] + wd * w;
      if (buf) {
        const b = (buf[i] = first ? d : momentum * buf[i] + (1 - dampening) * d);
        d = nesterov ? d + momentum * b : b;
      }
      p[pOff + i] = w - lr * d;
    }
  }
}
