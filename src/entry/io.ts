// The `gradwgsl/io` entry: model and data file formats (safetensors, the TF.js layers format, IDX).
// Imported for its place in the bundle, not for its effects: an entry that reaches the core entry puts every
// module they share into dist/lib/index.js (with preserveEntrySignatures "allow-extension"), instead of
// splitting the core into chunks by which entries use them, which costs a core user 2 kB of gzip.
import "../index.ts";
export { saveSafetensors, loadSafetensors, type NamedTensor, type FloatDtype } from "../model/safetensors.ts";
export { toTfjs, fromTfjs, type TfjsModelJson, type TfjsImport } from "../model/tfjs_format.ts";
export { parseIdx, type IdxArray } from "../data/idx.ts";
