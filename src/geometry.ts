// Output size and padding of convolution and pooling windows (TensorFlow's 'valid' / 'same' rules).
import { ShapeError } from "./errors.ts";

export type Padding = "valid" | "same";

/** A 2-D window over an NHWC input: kernel or pool size (KH, KW), strides, padding. */
export interface WindowGeom {
  B: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  padding: Padding;
}

/** The window plus what it implies: output size and the padding before the first row/column. */
export interface WindowPlan extends WindowGeom {
  OH: number;
  OW: number;
  PT: number;
  PL: number;
}

function axis(size: number, k: number, s: number, padding: Padding): { out: number; before: number } {
  if (padding === "valid") return { out: Math.floor((size - k) / s) + 1, before: 0 };
  const out = Math.ceil(size / s);
  return { out, before: Math.floor(Math.max((out - 1) * s + k - size, 0) / 2) };
}

/** Output size and padding for a window; `what` names the op or layer in errors. */
export function planWindow(g: WindowGeom, what: string): WindowPlan {
  for (const [k, v] of Object.entries(g)) {
    if (k !== "padding" && (!Number.isInteger(v) || (v as number) < 1)) throw new ShapeError(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  if (g.padding !== "valid" && g.padding !== "same") throw new ShapeError(`${what}: padding must be "valid" or "same", got "${g.padding}"`);
  const h = axis(g.H, g.KH, g.SH, g.padding);
  const w = axis(g.W, g.KW, g.SW, g.padding);
  if (h.out < 1 || w.out < 1) {
    throw new ShapeError(`${what}: a ${g.KH}×${g.KW} window does not fit a ${g.H}×${g.W} input with 'valid' padding; use padding 'same' or a smaller window`);
  }
  return { ...g, OH: h.out, OW: w.out, PT: h.before, PL: w.before };
}

/** The uniform block shared by im2col.wgsl (Conv) and pool.wgsl (Pool, with PH/PW for KH/KW). */
export function windowUniforms(p: WindowPlan, pool = false): Record<string, number> {
  const { B, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW } = p;
  return pool ? { B, H, W, C, PH: KH, PW: KW, SH, SW, PT, PL, OH, OW } : { B, H, W, C, KH, KW, SH, SW, PT, PL, OH, OW };
}
