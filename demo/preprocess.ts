// Turns a drawing into an MNIST-style input: the ink's bounding box scaled into a 20×20 box (aspect kept,
// area-averaged), placed in a 28×28 image and shifted so its centre of mass is the centre, as in MNIST.

export const SIDE = 28;
const BOX = 20;

/** `gray` is w×h ink intensity in 0..1 (row-major). Returns 28×28 bytes, white on black, or undefined when blank. */
export function toMnist(gray: Float32Array, w: number, h: number, threshold = 0.05): Uint8Array | undefined {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (gray[y * w + x]! > threshold) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return undefined;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const scale = BOX / Math.max(bw, bh);
  const ow = Math.max(1, Math.round(bw * scale));
  const oh = Math.max(1, Math.round(bh * scale));
  // Area average of the source pixels under each target pixel (nearest pixel when enlarging).
  const box = new Float32Array(ow * oh);
  for (let oy = 0; oy < oh; oy++) {
    const sy0 = y0 + Math.floor(oy / scale);
    const sy1 = Math.max(sy0 + 1, Math.min(y1 + 1, y0 + Math.ceil((oy + 1) / scale)));
    for (let ox = 0; ox < ow; ox++) {
      const sx0 = x0 + Math.floor(ox / scale);
      const sx1 = Math.max(sx0 + 1, Math.min(x1 + 1, x0 + Math.ceil((ox + 1) / scale)));
      let sum = 0;
      for (let sy = sy0; sy < sy1; sy++) for (let sx = sx0; sx < sx1; sx++) sum += gray[sy * w + sx]!;
      box[oy * ow + ox] = sum / ((sy1 - sy0) * (sx1 - sx0));
    }
  }
  // Centre of mass of the box, then the offset that puts it at the image centre (kept inside the image).
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const v = box[y * ow + x]!;
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const dx = clamp(Math.round(SIDE / 2 - mx / mass), SIDE - ow);
  const dy = clamp(Math.round(SIDE / 2 - my / mass), SIDE - oh);
  const out = new Uint8Array(SIDE * SIDE);
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) out[(y + dy) * SIDE + x + dx] = Math.round(Math.min(1, box[y * ow + x]!) * 255);
  return out;
}
