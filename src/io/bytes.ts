// Byte inputs for the loaders: any ArrayBuffer or view (a Node Buffer included) as an exact Uint8Array.
import { DataError } from "../errors.ts";

/** What the loaders accept as file contents. */
export type Bytes = ArrayBufferLike | ArrayBufferView;

const isArrayBuffer = (v: unknown): v is ArrayBufferLike =>
  v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer);

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "string") return `a string of ${v.length} characters (${JSON.stringify(v.slice(0, 20))}${v.length > 20 ? "…" : ""})`;
  if (typeof v !== "object") return `the ${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return `an Array of ${v.length} elements`;
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  return ctor && ctor !== "Object" ? `a ${ctor}` : "a plain object";
}

/**
 * The bytes of `input` as a plain Uint8Array over exactly its own range. A Node Buffer is a window
 * into a larger pooled ArrayBuffer, so `.buffer` alone sees other data, and `Buffer#slice` shares
 * memory instead of copying: the result is always a plain Uint8Array, whose `slice` copies.
 * `what` names the input in the DataError thrown for anything that is not bytes.
 */
export function bytesOf(input: unknown, what: string): Uint8Array {
  if (isArrayBuffer(input)) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new DataError(
    `${what}: expected bytes (a Uint8Array, Node Buffer, ArrayBuffer or other ArrayBufferView) but got ${describe(input)}; ` +
      "pass the file's contents, e.g. fs.readFileSync(path) or new Uint8Array(await response.arrayBuffer()).",
  );
}

/**
 * A new Float32Array holding the little-endian floats in bytes[begin, end). Always a copy: a view
 * would need a 4-byte-aligned offset (a Buffer's rarely is) and would keep the whole file alive.
 */
export function float32Copy(bytes: Uint8Array, begin: number, end: number): Float32Array {
  const out = new Float32Array((end - begin) / 4);
  new Uint8Array(out.buffer).set(bytes.subarray(begin, end));
  return out;
}
