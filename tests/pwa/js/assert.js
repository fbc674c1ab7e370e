// The assertions the in-browser unit tests use.
export function equal(actual, expected, what = 'value') {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

export function ok(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}
