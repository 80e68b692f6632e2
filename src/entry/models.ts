// The `gradwgsl/models` entry: the reference workloads, ready-made (the Keras MNIST CNN of the demo and
// the benchmarks, and a small residual network with batch normalisation).
// Imported for its place in the bundle, not for its effects: an entry that reaches the core entry puts every
// module they share into dist/lib/index.js (with preserveEntrySignatures "allow-extension"), instead of
// splitting the core into chunks by which entries use them, which costs a core user 2 kB of gzip.
import "../index.ts";
export { referenceCnn, residualNet, RESNET_WIDTHS } from "../model/reference.ts";
