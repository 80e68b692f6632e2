// The `gradwgsl/ops` entry: the eager tensor ops (matmul, conv2d, pooling, activations, losses, optimizer steps).
// Imported for its place in the bundle, not for its effects: an entry that reaches the core entry puts every
// module they share into dist/lib/index.js (with preserveEntrySignatures "allow-extension"), instead of
// splitting the core into chunks by which entries use them, which costs a core user 2 kB of gzip.
import "../index.ts";
export * from "../ops.ts";
