// Weight files in the demo: a file's tensors matched to the network's weights (layer names carry a
// per-process counter, conv_2d_1 in one process and conv_2d_3 after two resets in another), and the
// names a downloaded file gets, which are those of a fresh process, so `npm run train`'s files and the
// demo's load into each other.

export interface Named {
  name: string;
  shape: number[];
}

/** "conv_2d_3/kernel" → "conv_2d_1/kernel": layers numbered per kind in order of appearance. */
export function canonicalNames(names: readonly string[]): string[] {
  const layers = new Map<string, string>();
  const perKind = new Map<string, number>();
  return names.map((name) => {
    const m = /^(.*)_(\d+)\/([^/]+)$/.exec(name);
    if (!m) return name;
    const [, kind, , role] = m as unknown as [string, string, string, string];
    const layer = name.slice(0, name.lastIndexOf("/"));
    if (!layers.has(layer)) {
      const n = (perKind.get(kind) ?? 0) + 1;
      perKind.set(kind, n);
      layers.set(layer, `${kind}_${n}`);
    }
    return `${layers.get(layer)}/${role}`;
  });
}

const shapeText = (s: readonly number[]) => `[${s.join(", ")}]`;

/**
 * The file's tensors under the network's names: by name (counters aside) when the names agree, otherwise
 * by position. Throws an Error that names the tensor when the count or a shape does not fit.
 */
export function matchWeights<T extends Named>(file: readonly T[], network: readonly Named[]): (T & Named)[] {
  if (file.length !== network.length) {
    throw new Error(`the file has ${file.length} tensors (${file.map((t) => t.name).join(", ")}) but the network has ${network.length} (${network.map((t) => t.name).join(", ")})`);
  }
  const fileNames = canonicalNames(file.map((t) => t.name));
  const netNames = canonicalNames(network.map((t) => t.name));
  const byName = new Map(fileNames.map((n, i) => [n, file[i]!]));
  const sameNames = netNames.every((n) => byName.has(n));
  return network.map((w, i) => {
    const t = sameNames ? byName.get(netNames[i]!)! : file[i]!;
    if (t.shape.join() !== w.shape.join()) throw new Error(`the file's tensor "${t.name}" has shape ${shapeText(t.shape)} but the network's "${netNames[i]}" needs ${shapeText(w.shape)}`);
    return { ...t, name: w.name, shape: w.shape };
  });
}
