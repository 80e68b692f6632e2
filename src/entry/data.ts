// The `gradwgsl/data` entry: seeded two-dimensional toy datasets and a binary classifier's metrics.
// Imported for its place in the bundle, not for its effects: an entry that reaches the core entry puts every
// module they share into dist/lib/index.js (with preserveEntrySignatures "allow-extension"), instead of
// splitting the core into chunks by which entries use them, which costs a core user 2 kB of gzip.
import "../index.ts";
export { toyDataset, fiveFeatures, TOY_DATASETS, type ToyName, type ToyData } from "../data/toy.ts";
export { binaryReport, confusionMatrix, type BinaryReport } from "../train/report.ts";
