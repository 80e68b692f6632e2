// The reference CNN in jax-js (@jax-js/jax), as its users would write it: parameters in a tree, the
// loss differentiated with valueAndGrad, and the whole step (forward, backward, Adam) under one jit(), so
// jax-js fuses what it can and records the step once. Used by the bench as a peer on its WebGPU and
// Wasm devices; the same recipe as ours and TF.js's (Adam 1e-3, sparse categorical cross-entropy).
import type * as JaxModule from "@jax-js/jax";

type Jax = typeof JaxModule;
type JArray = JaxModule.Array;
type Params = { cw: JArray; cb: JArray; w1: JArray; b1: JArray; w2: JArray; b2: JArray };

export type JaxDevice = "webgpu" | "wasm";

export interface JaxTrainer {
  /** One training step on batch `i` of the preloaded batches; resolves the loss only when `sync`. */
  step(i: number, sync: boolean): Promise<number | undefined>;
  /** Waits for every step submitted so far. */
  settle(): Promise<void>;
  dispose(): void;
}

const B1 = 0.9;
const B2 = 0.999;
const EPS = 1e-7; // Keras's Adam epsilon, as ours and TF.js's

/**
 * Builds the CNN on `device` with the batches uploaded ahead (as the TF.js side does), Glorot-uniform
 * weights and zero biases as Keras initialises them.
 */
export async function jaxTrainer(jax: Jax, device: JaxDevice, batches: { x: Float32Array; y: Int32Array }[], lr = 1e-3): Promise<JaxTrainer> {
  const { numpy: np, nn, lax, jit, valueAndGrad, tree, random, blockUntilReady } = jax;
  const available = await jax.init(device);
  if (!available.includes(device)) throw new Error(`jax-js has no ${device} device here`);
  jax.defaultDevice(device);
  const keys = random.split(random.key(7), 3);
  const glorot = (k: JArray, shape: number[], fanIn: number, fanOut: number) => {
    const lim = Math.sqrt(6 / (fanIn + fanOut));
    return random.uniform(k, shape, { minval: -lim, maxval: lim });
  };
  const [k0, k1, k2] = [keys.ref.slice(0), keys.ref.slice(1), keys.slice(2)];
  let params: Params = {
    cw: glorot(k0, [32, 1, 3, 3], 9, 288),
    cb: np.zeros([32, 1, 1]),
    w1: glorot(k1, [5408, 128], 5408, 128),
    b1: np.zeros([128]),
    w2: glorot(k2, [128, 10], 128, 10),
    b2: np.zeros([10]),
  };
  let m: Params = tree.map((p: JArray) => np.zerosLike(p), tree.ref(params)) as Params;
  let v: Params = tree.map((p: JArray) => np.zerosLike(p), tree.ref(params)) as Params;

  const loss = (p: Params, x: JArray, y: JArray): JArray => {
    const n = y.shape[0]!;
    const conv = nn.relu(lax.conv(x, p.cw, [1, 1], "VALID").add(p.cb)); // [n, 32, 26, 26]
    const pooled = lax.reduceWindow(conv, np.max, [2, 2], [2, 2]).reshape([n, 5408]);
    const h = nn.relu(np.dot(pooled, p.w1).add(p.b1));
    const logits = np.dot(h, p.w2).add(p.b2);
    return nn.logSoftmax(logits).mul(nn.oneHot(y, 10)).sum().mul(-1 / n);
  };
  const update = jit((p: Params, mo: Params, ve: Params, x: JArray, y: JArray, lrT: JArray) => {
    const [value, g] = valueAndGrad(loss)(tree.ref(p), x, y);
    const out = { p: {} as Params, m: {} as Params, v: {} as Params };
    for (const key of Object.keys(p) as (keyof Params)[]) {
      const gk = g[key];
      const mk = mo[key].mul(B1).add(gk.ref.mul(1 - B1));
      const vk = ve[key].mul(B2).add(gk.ref.mul(gk).mul(1 - B2));
      out.p[key] = p[key].sub(mk.ref.mul(lrT.ref).div(np.sqrt(vk.ref).add(EPS)));
      out.m[key] = mk;
      out.v[key] = vk;
    }
    lrT.dispose();
    return [out.p, out.m, out.v, value] as const;
  });

  const xs = batches.map((b) => np.array(b.x).reshape([b.y.length, 1, 28, 28]));
  const ys = batches.map((b) => np.array(b.y, { dtype: np.int32 }));
  await blockUntilReady([xs, ys, params, m, v]);
  let t = 0;
  let last: JArray | undefined;
  return {
    async step(i, sync) {
      t += 1;
      const lrT = np.array(lr * (Math.sqrt(1 - B2 ** t) / (1 - B1 ** t)));
      last?.dispose();
      [params, m, v, last] = update(params, m, v, xs[i]!.ref, ys[i]!.ref, lrT) as unknown as [Params, Params, Params, JArray];
      return sync ? ((await last.ref.jsAsync()) as number) : undefined;
    },
    async settle() {
      await blockUntilReady(params);
    },
    dispose() {
      tree.dispose([params, m, v, xs, ys]);
      last?.dispose();
      update.dispose();
    },
  };
}
