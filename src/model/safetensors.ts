// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
// header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__ }, then the raw bytes.
import { DataError } from "../errors.ts";

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function saveSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // align the data to 8 bytes
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function loadSafetensors(bytes: Uint8Array, what = "safetensors file"): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new DataError(`${what}: ${bytes.length} bytes is too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8) throw new DataError(`${what}: the header claims ${n} bytes but the file has only ${bytes.length - 8} after the length; the file is truncated or not safetensors`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new DataError(`${what}: the header is not valid JSON (${(e as Error).message})`);
  }
  const data = bytes.subarray(8 + n);
  const tensors: NamedTensor[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (t.dtype !== "F32") throw new DataError(`${what}: tensor "${name}" has dtype ${t.dtype}; only F32 is supported`);
    const [b, e] = t.data_offsets;
    const count = t.shape.reduce((a, c) => a * c, 1);
    if (!(b >= 0 && e <= data.length && e - b === count * 4)) throw new DataError(`${what}: tensor "${name}" [${t.shape}] has data offsets [${b}, ${e}] that do not fit its shape or the file (${data.length} data bytes)`);
    tensors.push({ name, shape: t.shape, data: new Float32Array(data.slice(b, e).buffer) });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}
