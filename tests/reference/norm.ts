// Float64 CPU references for batch normalisation, layer normalisation and depthwise convolution (plain loops, NHWC, row-major).
import { convOutput, type Conv2dGeom } from "./cpu.ts";

type Arr = ArrayLike<number>;

// ---------------------------------------------------------------- batch normalisation (Keras semantics)

// x: (R, C), rows >= rowsValid are junk -> per channel mean, biased variance and invstd over the valid rows;
// y: (R, C) = gamma (x - mean) invstd + beta on every row (junk rows too: junk in, junk out)
export function batchNorm(x: Arr, gamma: Arr, beta: Arr, R: number, C: number, rowsValid = R, eps = 1e-3) {
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let r = 0; r < rowsValid; r++) for (let c = 0; c < C; c++) mean[c] += x[r * C + c] / rowsValid;
  for (let r = 0; r < rowsValid; r++) for (let c = 0; c < C; c++) variance[c] += (x[r * C + c] - mean[c]) ** 2 / rowsValid;
  const invstd = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
  const y = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) y[r * C + c] = gamma[c] * (x[r * C + c] - mean[c]) * invstd[c] + beta[c];
  return { y, mean, variance, invstd };
}

// moving statistics (C) after one training step: moving = moving momentum + batch (1 - momentum), biased variance
export function movingUpdate(movingMean: Arr, movingVar: Arr, mean: Arr, variance: Arr, momentum = 0.99) {
  return {
    movingMean: Float64Array.from(movingMean, (m, c) => m * momentum + mean[c] * (1 - momentum)),
    movingVar: Float64Array.from(movingVar, (v, c) => v * momentum + variance[c] * (1 - momentum)),
  };
}

// x: (R, C) -> y: (R, C) = gamma (x - movingMean) / sqrt(movingVar + eps) + beta
export function batchNormInference(x: Arr, gamma: Arr, beta: Arr, movingMean: Arr, movingVar: Arr, R: number, C: number, eps = 1e-3): Float64Array {
  return Float64Array.from({ length: R * C }, (_, i) => {
    const c = i % C;
    return (gamma[c] * (x[i] - movingMean[c])) / Math.sqrt(movingVar[c] + eps) + beta[c];
  });
}

// dy, x: (R, C); gamma, mean, invstd: (C) -> gradients of a loss of the valid rows' y (junk rows' dy ignored):
// dx (R, C), 0 on junk rows; dgamma, dbeta (C)
export function batchNormBackward(dy: Arr, x: Arr, gamma: Arr, mean: Arr, invstd: Arr, R: number, C: number, rowsValid = R) {
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const xhat = (r: number, c: number) => (x[r * C + c] - mean[c]) * invstd[c];
  for (let r = 0; r < rowsValid; r++) {
    for (let c = 0; c < C; c++) {
      dbeta[c] += dy[r * C + c];
      dgamma[c] += dy[r * C + c] * xhat(r, c);
    }
  }
  const dx = new Float64Array(R * C);
  const n = rowsValid;
  for (let r = 0; r < rowsValid; r++) {
    for (let c = 0; c < C; c++) {
      dx[r * C + c] = ((gamma[c] * invstd[c]) / n) * (n * dy[r * C + c] - dbeta[c] - xhat(r, c) * dgamma[c]);
    }
  }
  return { dx, dgamma, dbeta };
}

// ---------------------------------------------------------------- layer normalisation (last axis)

// x: (R, D) -> mean, rstd: (R) (biased variance), y: (R, D) = gamma (x - mean) rstd + beta
export function layerNorm(x: Arr, gamma: Arr, beta: Arr, R: number, D: number, eps = 1e-3) {
  const mean = new Float64Array(R);
  const rstd = new Float64Array(R);
  const y = new Float64Array(R * D);
  for (let r = 0; r < R; r++) {
    let m = 0;
    for (let j = 0; j < D; j++) m += x[r * D + j] / D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (x[r * D + j] - m) ** 2 / D;
    mean[r] = m;
    rstd[r] = 1 / Math.sqrt(v + eps);
    for (let j = 0; j < D; j++) y[r * D + j] = gamma[j] * (x[r * D + j] - m) * rstd[r] + beta[j];
  }
  return { y, mean, rstd };
}

// dy, x: (R, D); gamma (D); mean, rstd (R) -> dx (R, D), dgamma, dbeta (D)
export function layerNormBackward(dy: Arr, x: Arr, gamma: Arr, mean: Arr, rstd: Arr, R: number, D: number) {
  const dx = new Float64Array(R * D);
  const dgamma = new Float64Array(D);
  const dbeta = new Float64Array(D);
  for (let r = 0; r < R; r++) {
    const xhat = (j: number) => (x[r * D + j] - mean[r]) * rstd[r];
    let a = 0;
    let b = 0;
    for (let j = 0; j < D; j++) {
      const g = dy[r * D + j] * gamma[j];
      a += g / D;
      b += (g * xhat(j)) / D;
      dgamma[j] += dy[r * D + j] * xhat(j);
      dbeta[j] += dy[r * D + j];
    }
    for (let j = 0; j < D; j++) dx[r * D + j] = rstd[r] * (dy[r * D + j] * gamma[j] - a - xhat(j) * b);
  }
  return { dx, dgamma, dbeta };
}

// ---------------------------------------------------------------- depthwise convolution

// x: (B, H, W, C), w: (KH, KW, C, M), b: (C*M) | null -> pre-activation z: (B, OH, OW, C*M), output channel c*M + m
export function depthwiseConv2d(x: Arr, w: Arr, b: Arr | null, g: Conv2dGeom, M: number): Float64Array {
  const { B, H, W, C, KH, KW, SH, SW } = g;
  const { OH, OW, PT, PL } = convOutput(g);
  const z = new Float64Array(B * OH * OW * C * M);
  for (let n = 0; n < B; n++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
      let s = b ? b[c * M + m] : 0;
      for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
        const iy = oy * SH + ky - PT, ix = ox * SW + kx - PL;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += x[((n * H + iy) * W + ix) * C + c] * w[((ky * KW + kx) * C + c) * M + m];
      }
      z[((n * OH + oy) * OW + ox) * C * M + c * M + m] = s;
    }
  }
  return z;
}

// x: (B, H, W, C), w: (KH, KW, C, M), dz: (B, OH, OW, C*M) at the pre-activation -> dx (B, H, W, C), dw (KH, KW, C, M)
export function depthwiseConv2dBackward(x: Arr, w: Arr, dz: Arr, g: Conv2dGeom, M: number) {
  const { B, H, W, C, KH, KW, SH, SW } = g;
  const { OH, OW, PT, PL } = convOutput(g);
  const dx = new Float64Array(B * H * W * C);
  const dw = new Float64Array(KH * KW * C * M);
  for (let n = 0; n < B; n++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
      const d = dz[((n * OH + oy) * OW + ox) * C * M + c * M + m];
      for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
        const iy = oy * SH + ky - PT, ix = ox * SW + kx - PL;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        const xi = ((n * H + iy) * W + ix) * C + c, wi = ((ky * KW + kx) * C + c) * M + m;
        dx[xi] += d * w[wi];
        dw[wi] += d * x[xi];
      }
    }
  }
  return { dx, dw };
}

// w: (KH, KW, C, M) -> the equivalent dense conv2d kernel (KH, KW, C, C*M), zero off the channel's own block
export function depthwiseAsDense(w: Arr, KH: number, KW: number, C: number, M: number): Float64Array {
  const full = new Float64Array(KH * KW * C * C * M);
  for (let k = 0; k < KH * KW; k++) for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
    full[(k * C + c) * C * M + c * M + m] = w[(k * C + c) * M + m];
  }
  return full;
}
