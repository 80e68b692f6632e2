// Float64 CPU reference implementations (plain loops, NHWC, flat row-major): the test oracle for the WGSL kernels.

type Arr = ArrayLike<number>;
export type Activation = "linear" | "relu" | "sigmoid" | "tanh";
export type Padding = "valid" | "same";
export interface Conv2dGeom { B: number; H: number; W: number; C: number; KH: number; KW: number; SH: number; SW: number; padding: Padding }
export interface Pool2dGeom { B: number; H: number; W: number; C: number; PH: number; PW: number; SH: number; SW: number; padding: Padding }
export interface LossResult { loss: Float64Array; lossSum: number; correct: number }

// ---------------------------------------------------------------- matmul, activations, dense

// a: (M, K), or stored (K, M) if transA; b: (K, N), or stored (N, K) if transB -> c: (M, N) = op(a) · op(b)
export function matmul(a: Arr, b: Arr, M: number, N: number, K: number, transA = false, transB = false): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + i] : a[i * K + k]) * (transB ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = s;
    }
  }
  return c;
}

function act1(kind: Activation, v: number): number {
  switch (kind) {
    case "linear": return v;
    case "relu": return v > 0 ? v : 0;
    case "sigmoid": return 1 / (1 + Math.exp(-v));
    case "tanh": return Math.tanh(v);
  }
}

// x: any shape -> same shape
export function activation(kind: Activation, x: Arr): Float64Array {
  return Float64Array.from(x, (v) => act1(kind, v));
}

// y: forward OUTPUT, dy: gradient w.r.t. y (same shape) -> dx (gradient w.r.t. the pre-activation)
export function activationBackward(kind: Activation, y: Arr, dy: Arr): Float64Array {
  const dx = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    switch (kind) {
      case "linear": dx[i] = dy[i]; break;
      case "relu": dx[i] = v > 0 ? dy[i] : 0; break;
      case "sigmoid": dx[i] = dy[i] * v * (1 - v); break;
      case "tanh": dx[i] = dy[i] * (1 - v * v); break;
    }
  }
  return dx;
}

// dy: (R, N) -> db: (N), column sums
export function biasGrad(dy: Arr, R: number, N: number): Float64Array {
  const db = new Float64Array(N);
  for (let r = 0; r < R; r++) for (let n = 0; n < N; n++) db[n] += dy[r * N + n];
  return db;
}

// z: (R, N) += b: (N) broadcast over rows, in place (b null: no-op)
function addBias(z: Float64Array, b: Arr | null, N: number): Float64Array {
  if (b) for (let i = 0; i < z.length; i++) z[i] += b[i % N];
  return z;
}

// x: (B, IN), w: (IN, OUT), b: (OUT) | null -> y: (B, OUT) = act(x · w + b)
export function dense(x: Arr, w: Arr, b: Arr | null, B: number, IN: number, OUT: number, act: Activation): Float64Array {
  return activation(act, addBias(matmul(x, w, B, OUT, IN), b, OUT));
}

// x: (B, IN), w: (IN, OUT), y/dy: (B, OUT) -> dx: (B, IN), dw: (IN, OUT), db: (OUT)
export function denseBackward(x: Arr, w: Arr, y: Arr, dy: Arr, B: number, IN: number, OUT: number, act: Activation) {
  const dz = activationBackward(act, y, dy);
  return {
    dx: matmul(dz, w, B, IN, OUT, false, true),
    dw: matmul(x, dz, IN, OUT, B, true, false),
    db: biasGrad(dz, B, OUT),
  };
}

// ---------------------------------------------------------------- convolution

// One spatial dimension: n input, k kernel, s stride -> [output size, leading pad] (TensorFlow convention).
function outPad(n: number, k: number, s: number, padding: Padding): [number, number] {
  if (padding === "valid") {
    const o = Math.floor((n - k) / s) + 1;
    if (o < 1) throw new Error(`valid window ${k} does not fit input ${n}`);
    return [o, 0];
  }
  const o = Math.ceil(n / s);
  return [o, Math.floor(Math.max((o - 1) * s + k - n, 0) / 2)];
}

// geometry -> output size OH x OW and leading pads PT (top), PL (left)
export function convOutput(g: Conv2dGeom): { OH: number; OW: number; PT: number; PL: number } {
  const [OH, PT] = outPad(g.H, g.KH, g.SH, g.padding);
  const [OW, PL] = outPad(g.W, g.KW, g.SW, g.padding);
  return { OH, OW, PT, PL };
}

// x: (B, H, W, C) -> cols: (B*OH*OW, KH*KW*C); row (b*OH + oy)*OW + ox, column (ky*KW + kx)*C + c; 0 outside the image
export function im2col(x: Arr, g: Conv2dGeom): Float64Array {
  const { B, H, W, C, KH, KW, SH, SW } = g;
  const { OH, OW, PT, PL } = convOutput(g);
  const KC = KH * KW * C;
  const cols = new Float64Array(B * OH * OW * KC);
  for (let b = 0; b < B; b++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const iy = oy * SH + ky - PT, ix = ox * SW + kx - PL;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      for (let c = 0; c < C; c++) {
        cols[((b * OH + oy) * OW + ox) * KC + (ky * KW + kx) * C + c] = x[((b * H + iy) * W + ix) * C + c];
      }
    }
  }
  return cols;
}

// dcols: (B*OH*OW, KH*KW*C) -> dx: (B, H, W, C), the exact adjoint of im2col
export function col2im(dcols: Arr, g: Conv2dGeom): Float64Array {
  const { B, H, W, C, KH, KW, SH, SW } = g;
  const { OH, OW, PT, PL } = convOutput(g);
  const KC = KH * KW * C;
  const dx = new Float64Array(B * H * W * C);
  for (let b = 0; b < B; b++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const iy = oy * SH + ky - PT, ix = ox * SW + kx - PL;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      for (let c = 0; c < C; c++) {
        dx[((b * H + iy) * W + ix) * C + c] += dcols[((b * OH + oy) * OW + ox) * KC + (ky * KW + kx) * C + c];
      }
    }
  }
  return dx;
}

// x: (B, H, W, C), w: (KH, KW, C, F), b: (F) | null -> y: (B, OH, OW, F) = act(im2col(x) · w + b)
export function conv2d(x: Arr, w: Arr, b: Arr | null, g: Conv2dGeom, F: number, act: Activation): Float64Array {
  const { OH, OW } = convOutput(g);
  return activation(act, addBias(matmul(im2col(x, g), w, g.B * OH * OW, F, g.KH * g.KW * g.C), b, F));
}

// x: (B, H, W, C), w: (KH, KW, C, F), y/dy: (B, OH, OW, F) -> dx: (B, H, W, C), dw: (KH, KW, C, F), db: (F)
export function conv2dBackward(x: Arr, w: Arr, y: Arr, dy: Arr, g: Conv2dGeom, F: number, act: Activation) {
  const { OH, OW } = convOutput(g);
  const R = g.B * OH * OW, KC = g.KH * g.KW * g.C;
  const dz = activationBackward(act, y, dy);
  return {
    dx: col2im(matmul(dz, w, R, KC, F, false, true), g),
    dw: matmul(im2col(x, g), dz, KC, F, R, true, false),
    db: biasGrad(dz, R, F),
  };
}

// ---------------------------------------------------------------- pooling

// geometry -> output size and leading pads, same formula as convOutput with KH=PH, KW=PW
export function poolOutput(g: Pool2dGeom): { OH: number; OW: number; PT: number; PL: number } {
  return convOutput({ ...g, KH: g.PH, KW: g.PW });
}

// For each output element (B, OH, OW, C): flat x indices of its window's in-image positions, ky outer, kx inner.
function poolWindows(g: Pool2dGeom): number[][] {
  const { B, H, W, C, PH, PW, SH, SW } = g;
  const { OH, OW, PT, PL } = poolOutput(g);
  const windows: number[][] = [];
  for (let b = 0; b < B; b++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) for (let c = 0; c < C; c++) {
    const idx: number[] = [];
    for (let ky = 0; ky < PH; ky++) for (let kx = 0; kx < PW; kx++) {
      const iy = oy * SH + ky - PT, ix = ox * SW + kx - PL;
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) idx.push(((b * H + iy) * W + ix) * C + c);
    }
    if (idx.length === 0) throw new Error("pooling window entirely in padding");
    windows.push(idx);
  }
  return windows;
}

// x: (B, H, W, C) -> y: (B, OH, OW, C), argmax: (B, OH, OW, C) flat x index of each max (first on ties)
export function maxPool2d(x: Arr, g: Pool2dGeom): { y: Float64Array; argmax: Uint32Array } {
  const windows = poolWindows(g);
  const y = new Float64Array(windows.length);
  const argmax = new Uint32Array(windows.length);
  windows.forEach((idx, o) => {
    let best = idx[0];
    for (const i of idx) if (x[i] > x[best]) best = i;
    y[o] = x[best];
    argmax[o] = best;
  });
  return { y, argmax };
}

// x: (B, H, W, C), dy: (B, OH, OW, C) -> dx: (B, H, W, C), dy routed to each window's argmax
export function maxPool2dBackward(x: Arr, dy: Arr, g: Pool2dGeom): Float64Array {
  const { argmax } = maxPool2d(x, g);
  const dx = new Float64Array(g.B * g.H * g.W * g.C);
  for (let o = 0; o < argmax.length; o++) dx[argmax[o]] += dy[o];
  return dx;
}

// x: (B, H, W, C) -> y: (B, OH, OW, C), mean over in-image window positions (padding not counted)
export function avgPool2d(x: Arr, g: Pool2dGeom): Float64Array {
  return Float64Array.from(poolWindows(g), (idx) => idx.reduce((s, i) => s + x[i], 0) / idx.length);
}

// dy: (B, OH, OW, C) -> dx: (B, H, W, C)
export function avgPool2dBackward(dy: Arr, g: Pool2dGeom): Float64Array {
  const dx = new Float64Array(g.B * g.H * g.W * g.C);
  poolWindows(g).forEach((idx, o) => {
    for (const i of idx) dx[i] += dy[o] / idx.length;
  });
  return dx;
}

// ---------------------------------------------------------------- losses (rows b >= nValid are padding: loss 0, grad 0, not counted)

// row: (K) at offset -> index of the first maximum
function argmaxRow(v: Arr, off: number, K: number): number {
  let best = 0;
  for (let k = 1; k < K; k++) if (v[off + k] > v[off + best]) best = k;
  return best;
}

// logits: (B, K), t(b, k): target probability -> loss (B), dlogits (B, K), lossSum
function softmaxCE(logits: Arr, t: (b: number, k: number) => number, B: number, K: number, nValid: number) {
  const loss = new Float64Array(B);
  const dlogits = new Float64Array(B * K);
  let lossSum = 0;
  for (let b = 0; b < nValid; b++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, logits[b * K + k]);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(logits[b * K + k] - m);
    const lse = m + Math.log(s);
    for (let k = 0; k < K; k++) {
      const z = logits[b * K + k];
      loss[b] -= t(b, k) * (z - lse);
      dlogits[b * K + k] = (Math.exp(z - lse) - t(b, k)) / nValid;
    }
    lossSum += loss[b];
  }
  return { loss, dlogits, lossSum };
}

// logits: (B, K), labels: (B) class ids -> loss (B), dlogits (B, K); loss = -log softmax[label], dlogits = (softmax - onehot)/nValid
export function softmaxCrossEntropy(logits: Arr, labels: Arr, B: number, K: number, nValid = B): LossResult & { dlogits: Float64Array } {
  for (let b = 0; b < nValid; b++) {
    if (!Number.isInteger(labels[b]) || labels[b] < 0 || labels[b] >= K) throw new Error(`bad label ${labels[b]} at row ${b}`);
  }
  const r = softmaxCE(logits, (b, k) => (k === labels[b] ? 1 : 0), B, K, nValid);
  let correct = 0;
  for (let b = 0; b < nValid; b++) if (argmaxRow(logits, b * K, K) === labels[b]) correct++;
  return { ...r, correct };
}

// logits: (B, K), targets: (B, K) probabilities -> loss (B) = -sum t log softmax, dlogits (B, K) = (softmax - t)/nValid
export function softmaxCrossEntropyDense(logits: Arr, targets: Arr, B: number, K: number, nValid = B): LossResult & { dlogits: Float64Array } {
  const r = softmaxCE(logits, (b, k) => targets[b * K + k], B, K, nValid);
  let correct = 0;
  for (let b = 0; b < nValid; b++) if (argmaxRow(logits, b * K, K) === argmaxRow(targets, b * K, K)) correct++;
  return { ...r, correct };
}

// pred, target: (B, K) -> loss (B) = mean_k (p - t)^2, dpred (B, K) = 2 (p - t) / (K nValid)
export function meanSquaredError(pred: Arr, target: Arr, B: number, K: number, nValid = B): { loss: Float64Array; dpred: Float64Array; lossSum: number } {
  const loss = new Float64Array(B);
  const dpred = new Float64Array(B * K);
  let lossSum = 0;
  for (let b = 0; b < nValid; b++) {
    for (let k = 0; k < K; k++) {
      const d = pred[b * K + k] - target[b * K + k];
      loss[b] += (d * d) / K;
      dpred[b * K + k] = (2 * d) / (K * nValid);
    }
    lossSum += loss[b];
  }
  return { loss, dpred, lossSum };
}

// prob, target: (B, K) -> loss (B) = mean_k -(t log p' + (1-t) log(1-p')), p' = clamp(p, eps, 1-eps);
// dprob = (p' - t) / (p' (1 - p')) / (K nValid); correct = #elements with (p > 0.5) == (t > 0.5)
export function binaryCrossentropy(prob: Arr, target: Arr, B: number, K: number, nValid = B, eps = 1e-7): LossResult & { dprob: Float64Array } {
  const loss = new Float64Array(B);
  const dprob = new Float64Array(B * K);
  let lossSum = 0;
  let correct = 0;
  for (let b = 0; b < nValid; b++) {
    for (let k = 0; k < K; k++) {
      const p = prob[b * K + k], t = target[b * K + k];
      const pc = Math.min(Math.max(p, eps), 1 - eps);
      loss[b] -= (t * Math.log(pc) + (1 - t) * Math.log(1 - pc)) / K;
      dprob[b * K + k] = (pc - t) / (pc * (1 - pc)) / (K * nValid);
      if (p > 0.5 === t > 0.5) correct++;
    }
    lossSum += loss[b];
  }
  return { loss, dprob, lossSum, correct };
}

// ---------------------------------------------------------------- optimizers (flat arrays, updated in place)

// w, g, velocity: (n); Keras SGD: v = momentum v - lr g; w += v
export function sgdUpdate(w: Float64Array, g: Arr, velocity: Float64Array, lr: number, momentum: number): void {
  for (let i = 0; i < w.length; i++) {
    velocity[i] = momentum * velocity[i] - lr * g[i];
    w[i] += velocity[i];
  }
}

// w, g, m, v: (n); t: 1-based step; Keras/TF Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); w -= lr_t m / (sqrt(v) + eps)
export function adamUpdate(w: Float64Array, g: Arr, m: Float64Array, v: Float64Array, lr: number, beta1: number, beta2: number, eps: number, t: number): void {
  const lrT = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
  for (let i = 0; i < w.length; i++) {
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    w[i] -= (lrT * m[i]) / (Math.sqrt(v[i]) + eps);
  }
}
