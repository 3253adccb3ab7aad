// Experiment configs (experiments/runner/config.ts): every problem is reported with its key path before anything
// runs (unknown key, wrong type, unknown method, missing weights file or data folder, missing environment variable),
// `${VAR}` / `${VAR:-default}` substitution in model paths, YAML and JSON files, and every shipped config validates.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, validateConfig } from '../experiments/runner/config.js';

const dir = mkdtempSync(join(tmpdir(), 'ptslab-config-'));
const weights = join(dir, 'w.safetensors');
writeFileSync(weights, 'x');
const base = () => ({ model: { arch: 'resnet20', weights, dataset: 'mnist' }, methods: ['fcpts', 'uniform'], sparsities: [0.5, 0.9] });

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    validateConfig(raw, 'c.yaml', { env });
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as ConfigError).problems;
  }
  assert.unreachable('expected a ConfigError');
  return [];
}

test('a valid config gets defaults and its name from the file', () => {
  const c = validateConfig(base(), '/x/my-grid.yaml', { env: {} });
  assert.is(c.name, 'my-grid');
  assert.equal(c.seeds, [0]);
  assert.equal(c.ablations, []);
  assert.is(c.bnRecal, false);
  assert.equal(c.model, { arch: 'resnet20', weights, dataset: 'mnist' });
});

test('unknown keys are named with their full path', () => {
  assert.equal(problems({ ...base(), colour: 1 }), ['colour: unknown key']);
  assert.equal(problems({ ...base(), options: { itres: 3 } }), ['options.itres: unknown key']);
  assert.equal(problems({ ...base(), methodOptions: { fcpts: { objective: { lamda: 1 } } } }), ['methodOptions.fcpts.objective.lamda: unknown key']);
  assert.equal(problems({ ...base(), methodOptions: { fcps: {} } }), ['methodOptions.fcps: unknown key']);
  assert.equal(problems({ ...base(), ablations: [{ name: 'a', estimator: 'kde', gradmode: 'ste' }] }), ['ablations[0].gradmode: unknown key']);
});

test('wrong types and values name the key and what was expected', () => {
  const [m] = problems({ ...base(), methods: ['fcpts', 'uniform', 'magic'] });
  assert.ok(m.startsWith('methods[2]: expected one of fcpts, uniform, global,'), m);
  assert.ok(m.includes('lamp+bnrecal') && !m.includes('pot+bnrecal'), m);
  const [t] = problems({ ...base(), options: { iters: 'many' } });
  assert.is(t, 'options.iters: expected number, received string');
  const [s] = problems({ ...base(), sparsities: [0.5, 1.2] });
  assert.ok(s.startsWith('sparsities[1]: '), s);
  const [e] = problems({ ...base(), options: { estimator: 'parzen' } });
  assert.is(e, 'options.estimator: expected one of histogram, kde');
  assert.equal(problems({ ...base(), methods: [] }).length, 1);
  assert.ok(problems({ ...base(), seeds: [0, 0] })[0].startsWith('seeds[1]: duplicate'));
  assert.ok(problems({ ...base(), ablations: [{ name: 'a' }, { name: 'a' }] })[0].startsWith('ablations[1].name: duplicate'));
  assert.equal(problems({ ...base(), bnRecal: ['lamp'] }), ["bnRecal[0]: 'lamp' is not in methods"]);
});

test('missing weights, data folder and required model keys are reported with the key path', () => {
  assert.equal(problems({ ...base(), model: { arch: 'resnet20', weights: '/no/such/w.pth', dataset: 'mnist' } }), ['model.weights: file not found: /no/such/w.pth']);
  assert.equal(problems({ ...base(), model: { arch: 'resnet18', weights, dataset: 'imagenet', dataDir: '/no/such/imagenet' } }), ['model.dataDir: folder not found: /no/such/imagenet']);
  assert.equal(problems({ ...base(), model: { arch: 'resnet18', weights, dataset: 'imagenet' } }), ['model.dataDir: required for dataset imagenet']);
  assert.equal(problems({ ...base(), model: { arch: 'resnet20', dataset: 'mnist' } }), ['model.weights: required (or give model.name, a bundled model)']);
  assert.ok(problems({ ...base(), model: 'no-such-model' })[0].startsWith('model.name: expected one of fmnist-resnet20'));
  assert.equal(problems({ ...base(), model: { name: 'mnist-resnet20', weights } }), ['model.weights: not allowed with a bundled model (model.name)']);
  // checkFiles: false (dry runs) skips the file checks only
  assert.is(validateConfig({ ...base(), model: { arch: 'resnet20', weights: '/no/such/w.pth', dataset: 'mnist' } }, 'c.yaml', { env: {}, checkFiles: false }).model.weights, '/no/such/w.pth');
});

test('${VAR} substitution in model paths; a missing variable is named', () => {
  const model = { arch: 'resnet18', weights: '${W_FILE}', dataset: 'imagenet', dataDir: '${DATA:-' + dir + '}' };
  const c = validateConfig({ ...base(), model }, 'c.yaml', { env: { W_FILE: weights } });
  assert.is(c.model.weights, weights);
  assert.is(c.model.dataDir, dir);
  assert.equal(problems({ ...base(), model }, {}), ['model.weights: environment variable W_FILE is not set']);
  assert.equal(problems({ ...base(), model: { ...model, dataDir: '${IMAGENET_ROOT}/x' } }, { W_FILE: weights }), ['model.dataDir: environment variable IMAGENET_ROOT is not set']);
});

test('YAML and JSON files load; syntax errors and missing files are ConfigErrors', () => {
  const y = join(dir, 'g.yaml');
  writeFileSync(y, `model: { arch: resnet20, weights: ${weights}, dataset: mnist }\nmethods: [lamp]\nsparsities: [0.8]\n`);
  assert.equal(loadConfig(y).methods, ['lamp']);
  const j = join(dir, 'g.json');
  writeFileSync(j, JSON.stringify({ ...base(), name: 'json-grid' }));
  assert.is(loadConfig(j).name, 'json-grid');
  writeFileSync(y, 'methods: [lamp\n');
  assert.throws(() => loadConfig(y), (e: unknown) => e instanceof ConfigError && e.problems[0].startsWith('(syntax): '));
  assert.throws(() => loadConfig(join(dir, 'none.yaml')), (e: unknown) => e instanceof ConfigError && e.message.includes('config file not found'));
});

test('allocation: a file path becomes its layer sparsities (a result.json or a plain object); a bad file is named', () => {
  const result = join(dir, 'result.json');
  writeFileSync(result, JSON.stringify({ method: 'fcpts', layers: [{ name: 'conv1.weight', params: 10, sparsity: 0.25 }, { name: 'fc.weight', params: 5, sparsity: 0.5 }] }));
  const plain = join(dir, 'plain.json');
  writeFileSync(plain, JSON.stringify({ 'conv1.weight': 0.3 }));
  const c = validateConfig(
    { ...base(), methods: ['given', 'erk-kd'], options: { allocation: { 'a.weight': 0.1 } }, methodOptions: { 'erk-kd': { allocation: result }, given: { allocation: plain } } },
    'c.yaml',
    { env: {} },
  );
  assert.equal(c.options.allocation, { 'a.weight': 0.1 });
  assert.equal(c.methodOptions['erk-kd']!.allocation, { 'conv1.weight': 0.25, 'fc.weight': 0.5 });
  assert.equal(c.methodOptions.given!.allocation, { 'conv1.weight': 0.3 });
  assert.equal(problems({ ...base(), ablations: [{ name: 'a', allocation: join(dir, 'none.json') }] }), [`ablations[0].allocation: file not found: ${join(dir, 'none.json')}`]);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ layers: [{ name: 'conv1.weight', sparsity: 2 }] }));
  assert.equal(problems({ ...base(), options: { allocation: bad } }), [`options.allocation: ${bad}: the sparsity of conv1.weight must be a number in [0, 1], got 2`]);
  assert.equal(problems({ ...base(), options: { allocation: { 'a.weight': 1.5 } } }).length, 1);
});

test('every shipped config validates (file checks off: weights and ImageNet are not here)', () => {
  const cfgDir = fileURLToPath(new URL('../../experiments/configs', import.meta.url));
  const files = readdirSync(cfgDir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 8, files.join(', '));
  const env = { IMAGENET_DIR: dir, RESNET18_WEIGHTS: weights, RESNET50_WEIGHTS: weights, MOBILENETV2_WEIGHTS: weights };
  for (const f of files) {
    const c = loadConfig(join(cfgDir, f), { env, checkFiles: false });
    assert.is(`${c.name}.yaml`, f);
    if (f.startsWith('imagenet-')) {
      assert.equal(c.methods, ['uniform', 'global-l2', 'erk', 'lamp', 'pot', 'fcpts']);
      assert.equal(c.sparsities, [0.5, 0.6, 0.7, 0.8, 0.9]);
      assert.equal([c.options.calib, c.options.batchSize, c.options.iters, c.options.lr], [1024, 64, 1600, 0.01]);
      assert.equal(c.options.objective, { reconstruction: 'kl', temperature: 4, control: 'abs', lambda: 1 });
      assert.equal([c.eval.crop, c.eval.resize], [224, 256]);
    }
  }
});

test.run();
