// README's code runs as written (Rust's doc-tests, Python's doctest): every ```js block of README.md is run as an
// ES module from the repository root, as a user would after `npm install` (`node --input-type=module < block`, so
// `import ... from 'ptslab'` resolves to this package by its name), with the backend chosen as a plain import
// chooses it (PTSLAB_BACKEND unset). A block passes when it exits 0 within its time; its output is printed.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(`${root}/README.md`, 'utf8');

/** The ```js blocks of a Markdown text, with the line each starts on. */
export function jsBlocks(md: string): Array<{ line: number; code: string }> {
  const out: Array<{ line: number; code: string }> = [];
  const re = /^```js\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(md); m; m = re.exec(md)) out.push({ line: md.slice(0, m.index).split('\n').length, code: m[1] });
  return out;
}

const test = suite('README.md code blocks');
const blocks = jsBlocks(readme);

test('README has js blocks, and the extractor finds each one', () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length} blocks`);
  assert.equal(jsBlocks('a\n```js\nx()\n```\nb\n```sh\ny\n```\n```js\nz()\n```\n').map((b) => [b.line, b.code]), [[2, 'x()\n'], [9, 'z()\n']]);
});

for (const b of blocks) {
  test(`README.md line ${b.line} runs`, () => {
    const env = { ...process.env };
    delete env.PTSLAB_BACKEND;
    const r = spawnSync(process.execPath, ['--input-type=module'], { cwd: root, input: b.code, env, encoding: 'utf8', timeout: 240_000 });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    process.stdout.write(`\n  README.md:${b.line} ->\n${output.split('\n').map((l) => `    ${l}`).join('\n')}\n`);
    assert.is(r.signal, null, `block at line ${b.line} was killed (${r.signal}): ${output.slice(-400)}`);
    assert.is(r.status, 0, `block at line ${b.line} exited ${r.status}: ${output.slice(-800)}`);
  });
}

test.run();
