// Float64 CPU references for the graph's joins (add, multiply, concatenate, strided copy, global average
// pooling, dropout's mask): plain loops over multi-indices, the oracle for shaders/elementwise.wgsl,
// concat.wgsl, global_pool.wgsl and dropout.wgsl.

type Arr = ArrayLike<number>;

// ---------------------------------------------------------------- add, multiply

// a, b: same shape -> y = a + b
export function add(a: Arr, b: Arr): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]!);
}

// dy -> (da, db): both inputs receive dy unchanged
export function addBackward(dy: Arr): { da: Float64Array; db: Float64Array } {
  return { da: Float64Array.from(dy), db: Float64Array.from(dy) };
}

// a, b: same shape -> y = a · b
export function multiply(a: Arr, b: Arr): Float64Array {
  return Float64Array.from(a, (v, i) => v * b[i]!);
}

// a, b, dy -> (da = dy · b, db = dy · a)
export function multiplyBackward(a: Arr, b: Arr, dy: Arr): { da: Float64Array; db: Float64Array } {
  return { da: multiply(dy, b), db: multiply(dy, a) };
}

// ---------------------------------------------------------------- concatenate, strided copy

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

// Row-major strides of a shape.
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1]! * shape[d + 1]!;
  return s;
}

// The multi-index of flat element i of a shape.
function unflat(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

// The shape of concatenating `shapes` along `axis` (they agree on every other axis).
export function concatShape(shapes: readonly (readonly number[])[], axis: number): number[] {
  const out = [...shapes[0]!];
  out[axis] = shapes.reduce((s, sh) => s + sh[axis]!, 0);
  for (const sh of shapes) {
    if (sh.length !== out.length || sh.some((d, k) => k !== axis && d !== out[k])) throw new Error(`concat: shapes [${shapes.map((x) => `[${x}]`)}] disagree off axis ${axis}`);
  }
  return out;
}

// xs[i]: shapes[i] (full shapes, batch included) -> y: concatShape(shapes, axis); element by element
export function concat(xs: readonly Arr[], shapes: readonly (readonly number[])[], axis: number): Float64Array {
  const yShape = concatShape(shapes, axis);
  const ys = strides(yShape);
  const y = new Float64Array(size(yShape));
  let before = 0;
  xs.forEach((x, n) => {
    for (let i = 0; i < x.length; i++) {
      const idx = unflat(i, shapes[n]!);
      idx[axis]! += before;
      y[idx.reduce((s, v, d) => s + v * ys[d]!, 0)] = x[i]!;
    }
    before += shapes[n]![axis]!;
  });
  return y;
}

// dy: concatShape(shapes, axis) -> dx_i: shapes[i], each input's block of dy
export function concatBackward(dy: Arr, shapes: readonly (readonly number[])[], axis: number): Float64Array[] {
  const ys = strides(concatShape(shapes, axis));
  let before = 0;
  return shapes.map((shape) => {
    const dx = new Float64Array(size(shape));
    for (let i = 0; i < dx.length; i++) {
      const idx = unflat(i, shape);
      idx[axis]! += before;
      dx[i] = dy[idx.reduce((s, v, d) => s + v * ys[d]!, 0)]!;
    }
    before += shape[axis]!;
    return dx;
  });
}

export interface SliceGeom { outer: number; width: number; srcStride: number; srcOffset: number; dstStride: number; dstOffset: number }

// dst (copied) with dst[o·dstStride + dstOffset + j] (+)= src[o·srcStride + srcOffset + j]
export function copySlice(src: Arr, dst: Arr, g: SliceGeom, accumulate: boolean): Float64Array {
  const out = Float64Array.from(dst);
  for (let o = 0; o < g.outer; o++) {
    for (let j = 0; j < g.width; j++) {
      const d = o * g.dstStride + g.dstOffset + j;
      out[d] = (accumulate ? out[d]! : 0) + src[o * g.srcStride + g.srcOffset + j]!;
    }
  }
  return out;
}

// ---------------------------------------------------------------- global average pooling

// x: (B, HW, C) -> y: (B, C), mean over HW
export function globalAvgPool(x: Arr, B: number, HW: number, C: number): Float64Array {
  const y = new Float64Array(B * C);
  for (let b = 0; b < B; b++) for (let p = 0; p < HW; p++) for (let c = 0; c < C; c++) y[b * C + c]! += x[(b * HW + p) * C + c]! / HW;
  return y;
}

// dy: (B, C) -> dx: (B, HW, C) = dy / HW at every position
export function globalAvgPoolBackward(dy: Arr, B: number, HW: number, C: number): Float64Array {
  const dx = new Float64Array(B * HW * C);
  for (let b = 0; b < B; b++) for (let p = 0; p < HW; p++) for (let c = 0; c < C; c++) dx[(b * HW + p) * C + c] = dy[b * C + c]! / HW;
  return dx;
}

// ---------------------------------------------------------------- dropout's mask

// The PCG hash of shaders/dropout.wgsl in 32-bit integer arithmetic.
function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

// n elements -> per-element scale: 1 / (1 − rate) where kept, 0 where dropped (float32 arithmetic, as on the GPU)
export function dropoutScale(n: number, seed: number, rate: number): Float64Array {
  const r = Math.fround(rate);
  const keep = Math.fround(1 / Math.fround(1 - r));
  const hs = pcg(seed >>> 0);
  return Float64Array.from({ length: n }, (_, i) => ((pcg((pcg(i) ^ hs) >>> 0) >>> 8) / 16777216 >= r ? keep : 0));
}
