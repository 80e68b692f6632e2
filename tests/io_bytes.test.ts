// The loaders take bytes in every form Node and browsers hand them out: a Node Buffer (a window into a
// pooled ArrayBuffer, at any offset), an ArrayBuffer or any view; malformed files and non-bytes give a
// DataError that names the input, the tensor and the field.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseIdx } from "../src/data/idx.ts";
import { DataError, EngineError } from "../src/errors.ts";
import { bytesOf, float32Copy } from "../src/io/bytes.ts";
import { loadSafetensors, saveSafetensors, type NamedTensor } from "../src/model/safetensors.ts";
import { fromTfjs } from "../src/model/tfjs_format.ts";
import { randomArray } from "./reference/random.ts";

const dir = mkdtempSync(join(tmpdir(), "gradwgsl-io-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Small enough (< 4 KiB) that Node serves the file's Buffer from its shared 8 KiB pool.
const tensors: NamedTensor[] = [
  { name: "dense/kernel", shape: [5, 7], data: Float32Array.from(randomArray(35, 1)) },
  { name: "dense/bias", shape: [7], data: Float32Array.from(randomArray(7, 2)) },
  { name: "dénse·2/kernel", shape: [7, 3], data: Float32Array.from(randomArray(21, 3)) }, // non-ASCII name
  { name: "empty", shape: [0, 4], data: new Float32Array(0) },
];

function expectSame(got: NamedTensor[], want: NamedTensor[] = tensors): void {
  expect(got.map((t) => t.name)).toEqual(want.map((t) => t.name));
  for (const [i, t] of got.entries()) {
    expect(t.shape).toEqual(want[i]!.shape);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.data)).toEqual(Array.from(want[i]!.data)); // exact, and exactly as many values
  }
}

/** A Buffer holding `bytes` at `offset` inside a larger Buffer whose other bytes are garbage. */
function carved(bytes: Uint8Array, offset: number): Buffer {
  const pool = Buffer.alloc(offset + bytes.length + 13, 0x7f);
  pool.set(bytes, offset);
  return pool.subarray(offset, offset + bytes.length);
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

function expectDataError(fn: () => unknown, ...patterns: RegExp[]): void {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(DataError);
  expect(e).toBeInstanceOf(EngineError);
  for (const p of patterns) expect(e.message).toMatch(p);
}

describe("bytesOf", () => {
  it("views exactly the input's range, whatever its type", () => {
    const f = Float32Array.of(1, 2, 3);
    expect(bytesOf(f, "f")).toEqual(new Uint8Array(f.buffer));
    const b = carved(Uint8Array.of(1, 2, 3), 5);
    const v = bytesOf(b, "b");
    expect(Array.from(v)).toEqual([1, 2, 3]);
    expect(v.byteOffset).toBe(5);
    expect(Buffer.isBuffer(v)).toBe(false); // a plain Uint8Array: its slice() copies
    expect(Array.from(bytesOf(new DataView(b.buffer, b.byteOffset + 1, 2), "dv"))).toEqual([2, 3]);
    expect(Array.from(bytesOf(Uint8Array.of(9, 8).buffer, "ab"))).toEqual([9, 8]);
  });

  it("copies floats at an unaligned offset", () => {
    const src = Float32Array.of(1.5, -2.25, 3e-8);
    const c = carved(new Uint8Array(src.buffer), 3);
    expect(Array.from(float32Copy(c, 0, 12))).toEqual(Array.from(src));
  });

  it("names the argument and what it got for anything that is not bytes", () => {
    for (const [v, got] of [[null, /got null/], [undefined, /got undefined/], [42, /got the number 42/], ["abc", /got a string/], [{}, /got a plain object/], [[1, 2], /got an Array/], [new Map(), /got a Map/]] as const) {
      expectDataError(() => bytesOf(v, "model.safetensors"), /^model\.safetensors: /, got, /Uint8Array.*ArrayBuffer/);
    }
  });
});

describe("safetensors from Node Buffers and ArrayBuffers", () => {
  const bytes = saveSafetensors(tensors, { note: "io" });
  const file = join(dir, "weights.safetensors");
  writeFileSync(file, bytes);

  it("aligns the data to 8 bytes even with non-ASCII names", () => {
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
  });

  it("fs.readFileSync and fs.promises.readFile", async () => {
    for (const buf of [readFileSync(file), await readFile(file)]) {
      const { tensors: back, metadata } = loadSafetensors(buf, file);
      expectSame(back);
      expect(metadata).toEqual({ note: "io" });
    }
  });

  it("a Buffer carved from a larger pool at an odd offset, and an ArrayBuffer", () => {
    for (const offset of [1, 3, 5, 8]) expectSame(loadSafetensors(carved(bytes, offset)).tensors);
    expectSame(loadSafetensors(bytes.slice().buffer).tensors);
    expectSame(loadSafetensors(new DataView(carved(bytes, 7).buffer, 7, bytes.length)).tensors);
  });

  it("loaded tensors are copies, not views of the input", () => {
    const buf = carved(bytes, 8);
    const back = loadSafetensors(buf).tensors;
    buf.fill(0);
    expectSame(back);
  });

  it("refuses non-bytes, naming the argument", () => {
    for (const v of [null, undefined, 3, "weights.safetensors"]) expectDataError(() => loadSafetensors(v as never, "my.safetensors"), /my\.safetensors/, /expected bytes/);
    expectDataError(() => loadSafetensors(null as never), /safetensors file/);
  });
});

/** A safetensors file with a hand-written header (any JSON) and `dataBytes` bytes of data. */
function raw(header: unknown, dataBytes: number, text = JSON.stringify(header)): Uint8Array {
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + head.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  return out;
}
const f32 = (shape: unknown, data_offsets?: unknown) => ({ dtype: "F32", shape, ...(data_offsets === undefined ? {} : { data_offsets }) });

describe("malformed safetensors", () => {
  it("a header that is null, an array or a number", () => {
    expectDataError(() => loadSafetensors(raw(null, 0)), /header must be a JSON object/, /got null/);
    expectDataError(() => loadSafetensors(raw([1, 2], 0)), /header must be a JSON object/, /array/);
    expectDataError(() => loadSafetensors(raw(7, 0)), /header must be a JSON object/, /number/);
    expectDataError(() => loadSafetensors(raw({ __metadata__: [1] }, 0)), /__metadata__/);
  });

  it("overlapping data_offsets, in header order or out of it", () => {
    expectDataError(() => loadSafetensors(raw({ a: f32([4], [0, 16]), b: f32([4], [8, 24]) }, 24)), /tensor "b"/, /data_offsets \[8, 24\] overlap tensor "a"/);
    expectDataError(() => loadSafetensors(raw({ a: f32([4], [8, 24]), b: f32([4], [0, 16]) }, 24)), /tensor "a"/, /data_offsets \[8, 24\] overlap tensor "b"/);
    expectDataError(() => loadSafetensors(raw({ a: f32([4], [0, 16]), b: f32([4], [0, 16]) }, 16)), /data_offsets \[0, 16\] overlap/);
    // out of order but disjoint is fine
    const ok = loadSafetensors(raw({ a: f32([2], [8, 16]), b: f32([2], [0, 8]) }, 16));
    expect(ok.tensors.map((t) => t.name)).toEqual(["a", "b"]);
  });

  it("holes and trailing bytes in the data", () => {
    expectDataError(() => loadSafetensors(raw({ a: f32([2], [0, 8]), b: f32([2], [16, 24]) }, 24)), /tensor "b"/, /hole of 8 bytes after tensor "a"/);
    expectDataError(() => loadSafetensors(raw({ a: f32([2], [0, 8]) }, 12)), /4 bytes follow tensor "a"/);
  });

  it("negative or fractional dimensions, a shape that is not an array", () => {
    expectDataError(() => loadSafetensors(raw({ w: f32([-1, -4], [0, 16]) }, 16)), /tensor "w"/, /shape must be an array of non-negative integers/);
    expectDataError(() => loadSafetensors(raw({ w: f32([1.5, 2], [0, 12]) }, 12)), /tensor "w"/, /shape/);
    expectDataError(() => loadSafetensors(raw({ w: f32("4", [0, 16]) }, 16)), /tensor "w"/, /shape/);
  });

  it("missing or malformed data_offsets", () => {
    expectDataError(() => loadSafetensors(raw({ w: f32([4]) }, 16)), /tensor "w"/, /data_offsets must be \[begin, end\]/);
    expectDataError(() => loadSafetensors(raw({ w: f32([4], [16, 0]) }, 16)), /tensor "w"/, /data_offsets/);
    expectDataError(() => loadSafetensors(raw({ w: f32([4], [-16, 0]) }, 16)), /tensor "w"/, /data_offsets/);
    expectDataError(() => loadSafetensors(raw({ w: f32([4], [0, 16, 32]) }, 16)), /tensor "w"/, /data_offsets/);
  });

  it("a shape whose element count does not match the byte range", () => {
    expectDataError(() => loadSafetensors(raw({ w: f32([3], [0, 16]) }, 16)), /tensor "w"/, /shape \[3\] needs 12 bytes/, /\[0, 16\] hold 16/);
  });

  it("unknown and unsupported dtypes; an entry that is not an object", () => {
    expectDataError(() => loadSafetensors(raw({ w: { dtype: "F33", shape: [4], data_offsets: [0, 16] } }, 16)), /tensor "w"/, /dtype "F33" is not a safetensors dtype/);
    expectDataError(() => loadSafetensors(raw({ w: { shape: [4], data_offsets: [0, 16] } }, 16)), /tensor "w"/, /dtype/);
    expectDataError(() => loadSafetensors(raw({ w: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, 16)), /tensor "w"/, /dtype is I64; F32, F16 and BF16 are supported/);
    expectDataError(() => loadSafetensors(raw({ w: { dtype: "F16", shape: [4], data_offsets: [0, 16] } }, 16)), /tensor "w"/, /needs 8 bytes of F16/);
    expectDataError(() => loadSafetensors(raw({ w: 5 }, 0)), /tensor "w"/, /entry must be an object/);
  });

  it("a header claiming gigabytes is refused before allocating", () => {
    const lying = saveSafetensors(tensors).slice();
    new DataView(lying.buffer).setBigUint64(0, 1n << 40n, true);
    expectDataError(() => loadSafetensors(lying), /truncated or not safetensors/);
  });
});

describe("fromTfjs weights.bin", () => {
  const kernel = Float32Array.from(randomArray(6, 11));
  const bias = Float32Array.from(randomArray(3, 12));
  const json = {
    format: "layers-model",
    modelTopology: { class_name: "Sequential", config: { name: "s", layers: [{ class_name: "Dense", config: { name: "d", units: 3, activation: "linear", batch_input_shape: [null, 2] } }] } },
    weightsManifest: [{ paths: ["weights.bin"], weights: [{ name: "d/kernel", shape: [2, 3], dtype: "float32" }, { name: "d/bias", shape: [3], dtype: "float32" }] }],
  };
  const bin = new Uint8Array(36);
  bin.set(new Uint8Array(kernel.buffer), 0);
  bin.set(new Uint8Array(bias.buffer), 24);
  const want: NamedTensor[] = [{ name: "d/kernel", shape: [2, 3], data: kernel }, { name: "d/bias", shape: [3], data: bias }];

  it("reads a Buffer from a file, a carved Buffer at an odd offset and an ArrayBuffer", () => {
    const file = join(dir, "weights.bin");
    writeFileSync(file, bin);
    for (const input of [readFileSync(file), carved(bin, 3), bin.slice().buffer]) {
      const { layers, weights } = fromTfjs(json, input);
      expect(layers.map((l) => l.name)).toEqual(["d"]);
      expectSame(weights, want);
    }
  });

  it("refuses non-bytes, naming weights.bin", () => {
    for (const v of [null, undefined, 36, "weights.bin"]) expectDataError(() => fromTfjs(json, v as never), /weights\.bin/, /expected bytes/);
  });

  it("a layer without config names the layer", () => {
    const bad = structuredClone(json) as { modelTopology: { config: { layers: unknown[] } } };
    bad.modelTopology.config.layers.push({ class_name: "Dense" });
    expectDataError(() => fromTfjs(bad, bin), /layer 1 \("Dense"\) has no config/);
  });
});

describe("parseIdx inputs", () => {
  const idx = Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 3, 9, 8, 7);

  it("a Buffer from a file, a carved Buffer at an odd offset and an ArrayBuffer", () => {
    const file = join(dir, "labels-idx1-ubyte");
    writeFileSync(file, idx);
    for (const input of [readFileSync(file), carved(idx, 5), idx.slice().buffer]) {
      const r = parseIdx(input, "labels");
      expect(r.dims).toEqual([3]);
      expect(Array.from(r.data)).toEqual([9, 8, 7]);
      expect(Buffer.isBuffer(r.data)).toBe(false);
    }
  });

  it("null, undefined, numbers and strings give a DataError naming the file", () => {
    for (const v of [null, undefined, 11, "t10k-labels", { length: 11 }]) expectDataError(() => parseIdx(v as never, "t10k.idx"), /t10k\.idx/, /expected bytes/);
  });
});
