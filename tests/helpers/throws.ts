// Assert that fn throws an instance of cls whose message matches pattern (shared by the suites that check errors).

import * as assert from 'uvu/assert';

export function throwsMatching(fn: () => unknown, cls: new (...a: any[]) => Error, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a ${cls.name} matching ${pattern}`);
}
