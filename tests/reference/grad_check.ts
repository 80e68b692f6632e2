// Central-finite-difference gradients and a readable closeness assertion for the reference tests.

// Gradient of scalar f at x by central differences; x is restored after each probe.
export function numericGradient(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + eps;
    const fp = f(x);
    x[i] = x0 - eps;
    const fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

// Throws unless |actual - expected| <= atol + rtol * |expected| everywhere (NaN fails).
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 1e-6,
  atol = 1e-9,
  label = "values",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} != expected length ${expected.length}`);
  }
  let firstBad = -1;
  let maxErr = 0;
  let maxAt = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const e = Number.isNaN(err) ? Infinity : err; // NaN counts as the worst error
    if (e > maxErr) {
      maxErr = e;
      maxAt = i;
    }
    if (firstBad < 0 && !(err <= atol + rtol * Math.abs(expected[i]))) firstBad = i;
  }
  if (firstBad >= 0) {
    throw new Error(
      `${label}: mismatch at index ${firstBad}: actual ${actual[firstBad]}, expected ${expected[firstBad]} ` +
        `(max abs error ${maxErr} at index ${maxAt}; rtol ${rtol}, atol ${atol}, n ${actual.length})`,
    );
  }
}
