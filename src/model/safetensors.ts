// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
// header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__ }, then the raw bytes.
import { shown } from "../args.ts";
import { DataError } from "../errors.ts";
import { bytesOf, float32Copy, type Bytes } from "../io/bytes.ts";

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The dtypes tensors are saved and loaded as; every one loads into a Float32Array. */
export type FloatDtype = "F32" | "F16" | "BF16";
const WIDTH: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/**
 * A safetensors file, data aligned to 8 bytes; `metadata` goes in `__metadata__`. `dtype` F16 halves the
 * file (values rounded to nearest even; one beyond F16's ±65504 is refused, naming the tensor).
 */
export function saveSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}, options: { dtype?: FloatDtype } = {}): Uint8Array {
  const dtype = options?.dtype ?? "F32";
  if (dtype !== "F32" && dtype !== "F16") throw new DataError(`saveSafetensors: dtype must be "F32" or "F16", got ${shown(dtype)}`);
  const width = WIDTH[dtype];
  if (!Array.isArray(tensors)) throw new DataError(`saveSafetensors: tensors must be an array of { name, shape, data: Float32Array }, got ${shown(tensors)}`);
  if (!isObject(metadata) || Object.values(metadata).some((v) => typeof v !== "string")) throw new DataError(`saveSafetensors: metadata must be an object of strings, got ${shown(metadata)}`);
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [i, t] of tensors.entries()) {
    if (!isObject(t)) throw new DataError(`saveSafetensors: tensor ${i} must be { name, shape, data: Float32Array }, got ${shown(t)}`);
    if (typeof t.name !== "string" || t.name === "" || t.name === "__metadata__") throw new DataError(`saveSafetensors: tensor ${i}'s name must be a non-empty string other than "__metadata__", got ${shown(t.name)}`);
    if (Object.hasOwn(header, t.name)) throw new DataError(`saveSafetensors: two tensors are named "${t.name}"; names must be unique`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw new DataError(`saveSafetensors: tensor "${t.name}" has shape ${shown(t.shape)}; a shape is a list of non-negative integers`);
    const count = t.shape.reduce((a, c) => a * c, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== count) throw new DataError(`saveSafetensors: tensor "${t.name}" has shape [${t.shape.join(", ")}] (${count} values) but its data is ${t.data instanceof Float32Array ? `${t.data.length} values` : `not a Float32Array`}`);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * width] };
    offset += count * width;
  }
  const json = JSON.stringify(header);
  const length = new TextEncoder().encode(json).length; // UTF-8 bytes, not characters: names may be non-ASCII
  const head = new TextEncoder().encode(json + " ".repeat((8 - ((8 + length) % 8)) % 8)); // align the data to 8 bytes
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors) {
    if (dtype === "F32") out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    else {
      const halves = new DataView(out.buffer, at, t.data.length * 2);
      t.data.forEach((v, i) => {
        const h = toF16(v);
        if (h === undefined) throw new DataError(`saveSafetensors: tensor "${t.name}" value ${i} is ${v}, beyond F16's ±65504; save as F32`);
        halves.setUint16(i * 2, h, true);
      });
    }
    at += t.data.length * width;
  }
  return out;
}

/** Every dtype the safetensors format defines; F32, F16 and BF16 load here. */
const SAFETENSORS_DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Parses a safetensors file: `input` is its bytes (Uint8Array, Node Buffer, ArrayBuffer or any view).
 * Tensors come back in header order, each a copy. Throws DataError naming the tensor and field for a
 * malformed header, and refuses offsets that overlap, leave holes or run past the data.
 */
export function loadSafetensors(input: Bytes, what = "safetensors file"): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  const bytes = bytesOf(input, what);
  if (bytes.length < 8) throw new DataError(`${what}: ${bytes.length} bytes is too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8) throw new DataError(`${what}: the header claims ${n} bytes but the file has only ${bytes.length - 8} after the length; the file is truncated or not safetensors`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new DataError(`${what}: the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) throw new DataError(`${what}: the header must be a JSON object { name: { dtype, shape, data_offsets } }, got ${header === null ? "null" : Array.isArray(header) ? "an array" : typeof header}`);
  const meta = header.__metadata__ ?? {};
  if (!isObject(meta) || Object.values(meta).some((v) => typeof v !== "string")) throw new DataError(`${what}: __metadata__ must be an object of strings, got ${JSON.stringify(meta)}`);
  const data = bytes.subarray(8 + n);
  const ranges: { name: string; shape: number[]; b: number; e: number; dtype: FloatDtype }[] = [];
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const bad = (field: string, why: string) => new DataError(`${what}: tensor "${name}": ${field} ${why}`);
    if (!isObject(t)) throw bad("entry", `must be an object { dtype, shape, data_offsets }, got ${JSON.stringify(t)}`);
    if (!SAFETENSORS_DTYPES.includes(t.dtype as string)) throw bad("dtype", `${JSON.stringify(t.dtype)} is not a safetensors dtype (${SAFETENSORS_DTYPES.join(", ")})`);
    if (!(t.dtype === "F32" || t.dtype === "F16" || t.dtype === "BF16")) throw bad("dtype", `is ${t.dtype as string}; F32, F16 and BF16 are supported, convert the tensor to one of them`);
    const dtype = t.dtype as FloatDtype;
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every(isCount)) throw bad("shape", `must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    const offsets = t.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) throw bad("data_offsets", `must be [begin, end] with 0 <= begin <= end integers, got ${JSON.stringify(offsets)}`);
    const [b, e] = offsets as [number, number];
    if (e > data.length) throw bad("data_offsets", `[${b}, ${e}] do not fit the file (${data.length} data bytes); the file is truncated`);
    const count = shape.reduce((a: number, c: number) => a * c, 1);
    if (e - b !== count * WIDTH[dtype]) throw bad("shape", `[${shape.join(", ")}] needs ${count * WIDTH[dtype]} bytes of ${dtype} but data_offsets [${b}, ${e}] hold ${e - b}; they do not fit`);
    ranges.push({ name, shape, b, e, dtype });
  }
  // The format requires the data to be covered exactly once: no overlap (aliasing) and no holes.
  let end = 0;
  let prev = "the start of the data";
  for (const r of [...ranges].sort((x, y) => x.b - y.b || x.e - y.e)) {
    if (r.b < end) throw new DataError(`${what}: tensor "${r.name}": data_offsets [${r.b}, ${r.e}] overlap ${prev}, which ends at ${end}`);
    if (r.b > end) throw new DataError(`${what}: tensor "${r.name}": data_offsets [${r.b}, ${r.e}] leave a hole of ${r.b - end} bytes after ${prev}`);
    end = r.e;
    prev = `tensor "${r.name}"`;
  }
  if (end !== data.length) throw new DataError(`${what}: the tensors cover ${end} data bytes but the file has ${data.length}; ${data.length - end} bytes follow ${prev}`);
  const tensors = ranges.map((r) => ({ name: r.name, shape: r.shape, data: r.dtype === "F32" ? float32Copy(data, r.b, r.e) : widen(data, r.b, r.e, r.dtype) }));
  return { tensors, metadata: meta as Record<string, string> };
}

/** F16 or BF16 values (little-endian) as float32. */
function widen(bytes: Uint8Array, begin: number, end: number, dtype: "F16" | "BF16"): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + begin, end - begin);
  const out = new Float32Array((end - begin) / 2);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) {
    const h = view.getUint16(i * 2, true);
    if (dtype === "BF16") bits[i] = h << 16;
    else out[i] = fromF16(h);
  }
  return out;
}

function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The F16 bits nearest v (ties to even), or undefined when |v| rounds beyond the largest F16 (65504). */
function toF16(v: number): number | undefined {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  if (a >= 65520) return undefined; // rounds to infinity
  if (a < 2 ** -14) {
    // Subnormal: a multiple of 2^-24.
    return sign | roundEven(a * 2 ** 24);
  }
  const exp = Math.floor(Math.log2(a));
  const e = a / 2 ** exp >= 2 ? exp + 1 : a / 2 ** exp < 1 ? exp - 1 : exp; // guard log2 rounding
  const frac = roundEven((a / 2 ** e - 1) * 1024);
  // A fraction that rounds up to 1024 carries into the exponent.
  return frac === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | frac;
}

function roundEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}
