// An example ptslab plugin: one objective term and one pruning method. Copy this file, rename the two, and change
// their maths; examples/plugin/README.md says how to run it and what the results record.
//
// A plugin is a plain ES module whose default export is a function. ptslab imports the file (`--plugin FILE` on the
// command line, `plugins: [FILE]` in an experiment config), calls that function once with the plugin API, and the
// function registers terms and methods by name:
//
//   api.registerTerm(spec)      an objective term: (ctx) => scalar Tensor, added to FCPTS's (and erk-kd's) loss
//   api.registerMethod(spec)    a pruning method (api.oneShotMethod builds one from an allocation rule)
//   api.defineTerm, api.defineMethod   identities that only help editors infer types; optional in JavaScript
//   api.z                       the zod the host validates option schemas with: declare options with this one
//
// Nothing here needs an import: tensors come in through `ctx` and have methods (add, sub, mul, div, pow, sqrt, abs,
// sum, mean, flatten, detach, ...). If a plugin needs more (ops, F, ...), import it from 'ptslab'.
//
// The host validates every registration (name syntax, no clash with a built-in or another plugin, option schemas,
// reserved option keys) and rejects a bad one with a single line `plugin <file>: ...`. All registrations of a plugin
// are staged first: if one throws, none of them is kept. Every loaded plugin's path and sha256 go into each result,
// and `ptslab reproduce` refuses to re-run a cell whose plugin file has changed since then, so edit the file, then
// re-run the grid.

/** @param {import('ptslab').PluginApi} api */
export default function examplePlugin(api) {
  const { z } = api;

  // ---------------------------------------------------------------------------------------------------------------
  // Term `attention`: attention transfer (Zagoruyko & Komodakis, 2017) between the sparse student and the dense
  // teacher, on the outputs of named modules (default: every block, e.g. ResNet-20's layer1.0 ... layer3.2).
  //
  //   A(f) = mean_c f^2                          a spatial map per image: [B, C, H, W] -> [B, H*W]
  //   Q(f) = A(f) / sqrt(sum_hw A(f)^2 + eps)    each image's map scaled to unit L2 norm
  //   L_at = (1 / |M|) sum_{m in M} mean_b || Q(f_s,m) - Q(f_t,m) ||_2^2     (M: the modules, b: the images)
  //
  // It is differentiable in the student's features (the teacher's are detached) and lies in [0, 4] (two unit
  // vectors), so a weight around 0.1 to 1 sits beside the KL term without drowning it.
  //
  // A config enables it under the objective, with its weight and its options:
  //
  //   options:
  //     objective:
  //       terms:
  //         attention: { weight: 0.5 }                             # every block
  //         # attention: { weight: 0.5, modules: [layer2.2, layer3.2] }   # or named modules only
  //
  // `needs` tells the host which module outputs to capture (forward hooks on student and teacher, only when some
  // term asks); they arrive in ctx.studentFeatures / ctx.teacherFeatures, a Map by module name. 'blocks' means the
  // model's blocks (ctx.blocks lists their names).
  // ---------------------------------------------------------------------------------------------------------------
  const EPS = 1e-12;

  /** The `modules` option as the host's `needs` takes it: 'blocks' or a list of names. */
  const modulesOf = (o) => (o.modules === undefined || o.modules === 'blocks' ? 'blocks' : typeof o.modules === 'string' ? [o.modules] : o.modules);

  /** Q(f): the normalised attention map of a [B, C, H, W] feature map, as [B, H*W]. */
  const attentionMap = (f, where) => {
    if (f.ndim !== 4) throw new Error(`attention: module '${where}' gave a ${f.ndim}-d output [${f.shape}], expected feature maps [B, C, H, W]`);
    const a = f.mul(f).mean(1).flatten(1); // [B, H*W]
    return a.div(a.mul(a).sum(1, true).add(EPS).sqrt()); // each row to unit L2 norm
  };

  api.registerTerm({
    name: 'attention',
    description: 'attention transfer: mean over modules of ||Q(f_s) - Q(f_t)||^2, Q = normalised mean_c f^2 (default every block)',
    // Options are one strict zod object: an unknown key in a config is an error naming it. `weight` is not an
    // option: the config's `weight` is taken off before the rest is validated here.
    options: z.strictObject({
      // a list of module names, one name (what `--term attention=0.1,modules=layer3.2` gives), or 'blocks'
      modules: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe("module names, or 'blocks' (default)").optional(),
    }),
    needs: (o) => ({ modules: modulesOf(o) }),
    // make(options) runs once when the objective is built; the function it returns runs every iteration.
    make: (o) => (ctx) => {
      const m = modulesOf(o);
      const names = m === 'blocks' ? ctx.blocks : m;
      let total = null;
      for (const name of names) {
        const s = ctx.studentFeatures.get(name);
        const t = ctx.teacherFeatures.get(name);
        if (!s || !t) throw new Error(`attention: no captured output for module '${name}'`);
        const d = attentionMap(s, name).sub(attentionMap(t.detach(), name));
        const l = d.mul(d).sum(1).mean(); // mean over the batch of the squared distance
        total = total === null ? l : total.add(l);
      }
      if (total === null) throw new Error('attention: no modules to compare');
      return total.div(names.length); // a scalar Tensor, as every term must return
    },
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Method `size-power`: a one-shot magnitude method whose layer sparsities grow with layer size.
  //
  //   s_l = min(c * n_l^alpha, sMax),  c chosen so that sum_l n_l s_l = S* N   (n_l = weights in layer l, N = sum n_l)
  //
  // alpha = 0 is uniform; alpha = 0.5 (default) prunes a layer with 16x the weights 4x as hard, which spares the
  // small first convolution, the 1x1 shortcuts and the classifier (on ResNet-20 at 80%: conv1 6%, fc 13%, the
  // 36,864-weight convolutions 96%). Within each layer the smallest |w| go.
  //
  // api.oneShotMethod turns the rule into a registered method: it takes the prunable layers ({ name, weight, module },
  // in model order) and the target S*, and returns per-layer sparsities (the host rounds them so that exactly
  // round(S* N) weights are pruned) or integer counts (which must sum to that). Being one-shot, the method also
  // gets a `<name>+bnrecal` row (BatchNorm re-calibration afterwards) when a config says `bnRecal: true`.
  //
  // Its options appear in configs (`options: { alpha: 0.5 }`), as CLI flags (`--alpha 0.5`, `--s-max 0.95`) and in
  // `--help`, with the text of .describe() (before or after .optional()). The keys
  // every method shares (sparsity, seed, calib, batchSize, keepDense, bnRecal) are reserved: don't declare them.
  // ---------------------------------------------------------------------------------------------------------------
  api.registerMethod(
    api.oneShotMethod({
      name: 'size-power',
      description: 'layer sparsity proportional to (layer size)^alpha, capped at sMax; smallest |w| per layer',
      options: z.strictObject({
        alpha: z.number().min(0).max(4).describe('exponent on the layer size (default 0.5; 0 = uniform)').optional(),
        sMax: z.number().gt(0).max(1).describe('no layer sparser than this (default 0.99)').optional(),
      }),
      allocate: (layers, sparsity, o) => ({ sparsities: sizePowerSparsities(layers.map((l) => l.weight.size), sparsity, o.alpha ?? 0.5, o.sMax ?? 0.99) }),
    }),
  );
}

/**
 * s_l = min(c n_l^alpha, sMax) with sum n_l s_l = S* N: water-filling. Layers whose share would pass sMax are fixed at
 * sMax, and c is solved again over the rest, until no layer passes (at most one round per layer).
 * Exported so that it can be tested on its own; the host only reads the default export.
 */
export function sizePowerSparsities(sizes, sparsity, alpha, sMax) {
  const N = sizes.reduce((a, n) => a + n, 0);
  if (sparsity > sMax) throw new Error(`size-power: target sparsity ${sparsity} is above sMax ${sMax}`);
  const capped = new Array(sizes.length).fill(false);
  for (;;) {
    // budget left for the uncapped layers, and the sum of n_l * n_l^alpha over them
    let budget = sparsity * N;
    let weight = 0;
    sizes.forEach((n, i) => {
      if (capped[i]) budget -= sMax * n;
      else weight += n * n ** alpha;
    });
    const c = weight > 0 ? budget / weight : 0;
    const over = sizes.map((n, i) => !capped[i] && c * n ** alpha > sMax);
    if (!over.some(Boolean)) return sizes.map((n, i) => (capped[i] ? sMax : Math.max(0, c * n ** alpha)));
    over.forEach((x, i) => {
      if (x) capped[i] = true;
    });
  }
}
