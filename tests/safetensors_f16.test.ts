// safetensors in half precision: F16 saving (round to nearest even, refusing what F16 cannot hold) and
// F16/BF16 loading, checked on every finite F16 value, hand-worked roundings and hand-built files.
import { describe, expect, it } from "vitest";
import { DataError } from "../src/errors.ts";
import { loadSafetensors, saveSafetensors } from "../src/entry/io.ts";

/** A file holding one tensor of raw little-endian 16-bit words. */
function file16(dtype: "F16" | "BF16", words: number[]): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ t: { dtype, shape: [words.length], data_offsets: [0, words.length * 2] } }));
  const out = new Uint8Array(8 + header.length + words.length * 2);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  words.forEach((w, i) => view.setUint16(8 + header.length + i * 2, w, true));
  return out;
}

const words = (bytes: Uint8Array) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const data = bytes.subarray(8 + n);
  return Array.from({ length: data.length / 2 }, (_, i) => data[2 * i]! | (data[2 * i + 1]! << 8));
};

describe("F16 and BF16 safetensors", () => {
  it("loads hand-built F16 and BF16 files", () => {
    // F16: 1 = 0x3c00, −2 = 0xc000, 65504 = 0x7bff, 2^−24 = 0x0001 (smallest subnormal), 2^−14 = 0x0400, 0.333251953125 = 0x3555.
    expect(Array.from(loadSafetensors(file16("F16", [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555])).tensors[0]!.data)).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, 0.333251953125]);
    // BF16 is the upper half of a float32: 1 = 0x3f80, −0.5 = 0xbf00, 3.140625 = 0x4049.
    expect(Array.from(loadSafetensors(file16("BF16", [0x3f80, 0xbf00, 0x4049])).tensors[0]!.data)).toEqual([1, -0.5, 3.140625]);
  });

  it("saves every finite F16 value exactly and loads it back bitwise", () => {
    const all: number[] = [];
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00) all.push(h);
    const values = loadSafetensors(file16("F16", all)).tensors[0]!.data;
    const saved = saveSafetensors([{ name: "t", shape: [values.length], data: values }], {}, { dtype: "F16" });
    expect(words(saved)).toEqual(all);
    expect(Array.from(loadSafetensors(saved).tensors[0]!.data)).toEqual(Array.from(values));
  });

  it("rounds to the nearest F16, ties to even, and refuses values beyond ±65504", () => {
    const v = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, -0, 65519, 3 * 2 ** -26]);
    // 1 + 2^-11 is halfway between 1 (even) and 1 + 2^-10: 0x3c00; 1 + 3·2^-11 halfway between 0x3c01 (odd)
    // and 0x3c02: 0x3c02; a hair above the first halfway rounds up: 0x3c01; −0: 0x8000; 65519 < 65520: 65504
    // (0x7bff); 3·2^-26 = 0.75·2^-24 rounds to the smallest subnormal 0x0001.
    expect(words(saveSafetensors([{ name: "t", shape: [6], data: v }], {}, { dtype: "F16" }))).toEqual([0x3c00, 0x3c02, 0x3c01, 0x8000, 0x7bff, 0x0001]);
    expect(() => saveSafetensors([{ name: "big", shape: [2], data: Float32Array.from([1, 65520]) }], {}, { dtype: "F16" })).toThrow(/tensor "big" value 1 is 65520, beyond F16/);
    expect(() => saveSafetensors([], {}, { dtype: "F64" as never })).toThrow(DataError);
  });

  it("an F16 file is half the size and still checked", () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    const f32 = saveSafetensors([{ name: "w", shape: [10, 100], data }]);
    const f16 = saveSafetensors([{ name: "w", shape: [10, 100], data }], {}, { dtype: "F16" });
    expect(f16.length).toBeLessThan(f32.length * 0.55);
    const back = loadSafetensors(f16).tensors[0]!;
    expect(back.shape).toEqual([10, 100]);
    back.data.forEach((x, i) => expect(Math.abs(x - data[i]!)).toBeLessThanOrEqual(2 ** -11));
    expect(() => loadSafetensors(file16("F16", [1, 2, 3]).subarray(0, -2))).toThrow(/truncated|do not fit/);
  });
});

describe("referenceCnn options", () => {
  it("adds dropout before the classifier and L2 on every kernel, and refuses bad values", async () => {
    const { referenceCnn } = await import("../src/entry/models.ts");
    expect(referenceCnn().layers.map((l) => l.kind)).toEqual(["conv2d", "maxPooling2d", "flatten", "dense", "dense"]);
    expect(referenceCnn({ dropout: 0.5 }).layers.map((l) => l.kind)).toEqual(["conv2d", "maxPooling2d", "flatten", "dense", "dropout", "dense"]);
    expect(() => referenceCnn({ dropout: 1 })).toThrow(/dropout/);
    expect(() => referenceCnn({ l2: -1 })).toThrow(/l2/);
    expect(() => referenceCnn({ l1: 0.1 } as never)).toThrow(/l1/);
  });
});
