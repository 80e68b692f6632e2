// The engine: one device, its kernel registry and matmul choice, and the eager execution of dispatches.
import { DataError, GpuError, ShapeError } from "./errors.ts";
import { acquireGpu, describeAdapter, type Gpu, type GpuOptions } from "./gpu/device.ts";
import { BufferUsage, MapMode, STORAGE_USAGE } from "./gpu/flags.ts";
import { KernelRegistry, type Dispatch } from "./gpu/registry.ts";
import type { KernelContext, MatmulVariant } from "./kernels.ts";
import { Tensor, type DType } from "./tensor.ts";
import { tunedMatmul } from "./tuning.ts";

export interface EngineOptions extends GpuOptions {
  /**
   * Matmul implementation. "auto" (default): the variant measured fastest on this adapter, timed once
   * and cached per adapter (a file under ~/.cache/gradwgsl in Node, localStorage in the browser).
   * "tiled" or "direct" pins one; "guess" skips measuring (direct on CPU adapters, tiled on GPUs).
   */
  matmul?: MatmulVariant | "auto" | "guess";
  /** Fill every new output buffer with NaN, so an element a kernel forgets to write shows up (tests). */
  poisonOutputs?: boolean;
  /** Check uploaded float data for NaN and Infinity and refuse it. */
  checkFinite?: boolean;
}

export class Engine implements KernelContext {
  readonly kernels: KernelRegistry;
  matmulVariant: MatmulVariant;

  private constructor(
    readonly gpu: Gpu,
    private readonly options: EngineOptions,
  ) {
    this.kernels = new KernelRegistry(gpu.device);
    const m = options.matmul ?? "auto";
    this.matmulVariant = m === "auto" || m === "guess" ? (gpu.report.isCpu ? "direct" : "tiled") : m;
  }

  /** Acquires a device (or wraps the one given in options.device) and settles the matmul variant. */
  static async create(options: EngineOptions = {}): Promise<Engine> {
    const engine = new Engine(await acquireGpu(options), options);
    if ((options.matmul ?? "auto") === "auto") engine.matmulVariant = (await tunedMatmul(engine.kernels, engine.gpu.report)).variant;
    return engine;
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  /** One line naming the adapter, e.g. "llvmpipe ... (mesa, CPU, dawn)". */
  describe(): string {
    return describeAdapter(this.gpu.report);
  }

  /**
   * A storage buffer of at least 4 bytes, labelled; NaN-filled when poisonOutputs is on. `holds` says
   * what sizes it, so that a buffer too large for the adapter gets advice that fits.
   */
  createBuffer(bytes: number, label: string, poison = this.options.poisonOutputs, holds: "batch" | "arena" | "dataset" | "other" = "batch"): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    const limits = this.device.limits;
    // An arena is bound in ranges, so only the buffer itself is limited.
    const max = holds === "arena" ? limits.maxBufferSize : Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const advice = { batch: "use a smaller batch", arena: "use a smaller batch", dataset: "split the dataset and fit or evaluate it in parts", other: "make the model or tensor smaller" }[holds];
    if (size > max) throw new GpuError(`${label}: ${size} bytes exceeds this adapter's ${holds === "arena" || max === limits.maxBufferSize ? "maxBufferSize" : "maxStorageBufferBindingSize"} (${max}); ${advice}`);
    const buffer = this.device.createBuffer({ label, size, usage: STORAGE_USAGE, mappedAtCreation: !!poison });
    if (poison) {
      new Float32Array(buffer.getMappedRange()).fill(NaN);
      buffer.unmap();
    }
    return buffer;
  }

  /** Uploads data as a tensor of the given shape. */
  tensor(data: ArrayLike<number>, shape: readonly number[], dtype: DType = "f32", label = "tensor"): Tensor {
    const size = checkShape(shape, label);
    if (data.length !== size) throw new ShapeError(`${label}: data has ${data.length} elements but shape [${shape.join(", ")}] needs ${size}`);
    const typed = dtype === "f32" ? Float32Array.from(data) : Uint32Array.from(data);
    if (dtype === "f32" && this.options.checkFinite) {
      const bad = (typed as Float32Array).findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new DataError(`${label}: element ${bad} is ${typed[bad]}; inputs must be finite (clean or impute the data)`);
    }
    if (dtype === "u32") {
      const bad = Array.prototype.findIndex.call(data, (v: number) => !Number.isInteger(v) || v < 0 || v > 0xffffffff);
      if (bad >= 0) throw new DataError(`${label}: element ${bad} is ${data[bad]}; u32 tensors hold non-negative integers`);
    }
    const buffer = this.createBuffer(size * 4, label, false);
    this.device.queue.writeBuffer(buffer, 0, typed);
    return new Tensor(this, buffer, shape, dtype);
  }

  /** An output tensor (NaN-poisoned when poisonOutputs is on). */
  empty(shape: readonly number[], dtype: DType = "f32", label = "tensor"): Tensor {
    return new Tensor(this, this.createBuffer(checkShape(shape, label) * 4, label), shape, dtype);
  }

  /** Encodes dispatches into one command encoder and one compute pass, submits, then frees their uniforms. */
  async run(dispatches: Dispatch[], temporaries: GPUBuffer[] = []): Promise<void> {
    this.throwIfFailed();
    const label = dispatches.map((d) => d.label).join(" + ");
    await this.checked(label, () => {
      const encoder = this.device.createCommandEncoder({ label });
      const pass = encoder.beginComputePass({ label });
      for (const d of dispatches) d.encode(pass);
      pass.end();
      this.device.queue.submit([encoder.finish()]);
    });
    for (const d of dispatches) d.destroy();
    for (const t of temporaries) t.destroy();
  }

  /** Runs `work` inside validation and out-of-memory error scopes; a GPU error becomes a GpuError naming `label`. */
  async checked<T>(label: string, work: () => T): Promise<T> {
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    let out: T | undefined;
    let thrown: unknown;
    try {
      out = work();
    } catch (e) {
      thrown = e;
    }
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    const err = validation ?? oom;
    if (err) throw new GpuError(`${label}: GPU ${oom && !validation ? "out of memory" : "validation error"}: ${err.message}`);
    if (thrown !== undefined) throw thrown;
    return out as T;
  }

  /** Copies a buffer range back to the CPU. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    this.throwIfFailed();
    const staging = this.device.createBuffer({ label: `read ${buffer.label}`, size: Math.ceil(bytes / 4) * 4, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder({ label: `read ${buffer.label}` });
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, staging.size);
    this.device.queue.submit([encoder.finish()]);
    try {
      await staging.mapAsync(MapMode.READ);
    } catch (e) {
      this.throwIfFailed();
      throw new GpuError(`reading ${buffer.label} back failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.destroy();
    this.throwIfFailed();
    return out;
  }

  /** Rethrows the first GPU error (validation, out of memory, device loss) reported since the last check. */
  throwIfFailed(): void {
    const e = this.gpu.takeError();
    if (e) throw e;
    if (this.gpu.lost) throw new GpuError(`the GPU device was lost (${this.describe()}); create a new Engine`);
  }

  dispose(): void {
    this.device.destroy();
  }
}

function checkShape(shape: readonly number[], label: string): number {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${label}: shape [${shape}] must be a list of positive integers`);
  }
  return shape.reduce((a, b) => a * b, 1);
}
