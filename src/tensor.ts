// A GPU tensor: a labelled storage buffer with a shape; read() brings its values back.
import type { Engine } from "./engine.ts";
import { ShapeError } from "./errors.ts";

export type DType = "f32" | "u32";

export class Tensor {
  readonly size: number;

  constructor(
    readonly engine: Engine,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType = "f32",
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  /** The values, after all GPU work submitted so far. */
  async read(): Promise<Float32Array | Uint32Array> {
    const bytes = await this.engine.read(this.buffer, this.size * 4);
    return this.dtype === "f32" ? new Float32Array(bytes) : new Uint32Array(bytes);
  }

  /** The same buffer seen with another shape of the same size (Flatten). */
  reshape(shape: readonly number[]): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== this.size) throw new ShapeError(`reshape: [${this.shape}] has ${this.size} elements, [${shape}] has ${size}`);
    return new Tensor(this.engine, this.buffer, shape, this.dtype);
  }

  dispose(): void {
    this.buffer.destroy();
  }
}
