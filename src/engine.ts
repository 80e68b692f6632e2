// The engine: one device, its kernel registry and matmul choice, and the eager execution of dispatches.
import { checkShape, flag, oneOf, optionsOf, shown } from "./args.ts";
import { ConfigError, DataError, GpuError, ShapeError } from "./errors.ts";
import { acquireGpu, checkGpuOptions, describeAdapter, GPU_OPTIONS, type AdapterReport, type Gpu, type GpuOptions } from "./gpu/device.ts";
import { BufferUsage, MapMode, STORAGE_USAGE } from "./gpu/flags.ts";
import { KernelRegistry, type Dispatch } from "./gpu/registry.ts";
import { MATMUL_TILES, matmulVariants, type KernelContext, type MatmulVariant } from "./kernels.ts";
import { tunedMatmul } from "./tuning.ts";

export interface EngineOptions extends GpuOptions {
  /**
   * Matmul implementation. "auto" (default): the variant measured fastest on this adapter, timed once
   * and cached per adapter (a file under ~/.cache/gradwgsl in Node, localStorage in the browser).
   * "tiled", "direct", "subgroup8", "subgroup4", "subgroup8k4" or "subgroup4k4" pins one (a subgroup
   * kernel needs an adapter whose subgroups have exactly that many lanes; k4 walks K four at a time,
   * which SwiftShader runs faster, and is not measured on llvmpipe, where it is not faster and compiles
   * 0.5 s longer); "guess" skips measuring and checking (direct on CPU adapters, tiled on GPUs: a
   * subgroup kernel is only chosen after its product was checked).
   */
  matmul?: MatmulVariant | "auto" | "guess";
  /**
   * vec4 twins of the memory-bound kernels (bias gradients, SGD/Adam), which move 4 floats per load and
   * store where shapes allow: on CPU adapters these kernels run 1.4–2.4× faster (SwiftShader pays per
   * storage access, whatever its width). Default: on, except on drivers that compile each pipeline at
   * its first dispatch (llvmpipe), where each twin costs 45–110 ms more to compile and so lengthens the
   * first step; `npm run train` turns them on there (minutes of training repay the compile).
   */
  vectors?: boolean;
  /**
   * Fused kernels where the graph allows them: a first 3×3 convolution and the 2×2 max pooling after it
   * run as one pass (shaders/conv_pool.wgsl, src/graph/fuse.ts). Default: on, except on drivers that
   * compile each pipeline at its first dispatch (llvmpipe: 0.4–0.45 s for each of the two fused kernels,
   * which made the reference CNN's first step 1.4 s instead of 0.8; its steps after are 13 ms shorter,
   * so `npm run train` turns fusion on). false runs every layer's own kernels.
   */
  fusion?: boolean;
  /** Fill every new output buffer with NaN, so an element a kernel forgets to write shows up (tests). */
  poisonOutputs?: boolean;
  /** Check uploaded float data for NaN and Infinity and refuse it. */
  checkFinite?: boolean;
}

/** Drivers that compile each pipeline at its first dispatch (llvmpipe) make every extra kernel part of the first step. */
function compilesAtDispatch(report: AdapterReport): boolean {
  return /llvmpipe/i.test(`${report.description} ${report.device}`);
}

const MATMUL_CHOICES = ["auto", "guess", ...(Object.keys(MATMUL_TILES) as MatmulVariant[])] as const;
const DTYPES: readonly DType[] = ["f32", "u32"];

/** Checks Engine.create's options (and compile's engineOptions) before anything is acquired. */
export function checkEngineOptions(options: unknown, what = "Engine.create"): EngineOptions {
  const o = optionsOf<EngineOptions>(options, what, [...GPU_OPTIONS, "matmul", "vectors", "fusion", "poisonOutputs", "checkFinite"]);
  oneOf(o.matmul, `${what}: matmul`, MATMUL_CHOICES);
  flag(o.vectors, `${what}: vectors`);
  flag(o.fusion, `${what}: fusion`);
  flag(o.poisonOutputs, `${what}: poisonOutputs`);
  flag(o.checkFinite, `${what}: checkFinite`);
  checkGpuOptions(o, what);
  return o;
}

export class Engine implements KernelContext {
  readonly kernels: KernelRegistry;
  matmulVariant: MatmulVariant;
  readonly vec4: boolean;
  /** EngineOptions.fusion, with its default settled for this adapter. */
  readonly fusion: boolean;

  private constructor(
    readonly gpu: Gpu,
    private readonly options: EngineOptions,
  ) {
    this.kernels = new KernelRegistry(gpu.device);
    const m = options.matmul ?? "auto";
    this.matmulVariant = m === "auto" || m === "guess" ? (gpu.report.isCpu ? "direct" : "tiled") : m;
    this.vec4 = options.vectors ?? !compilesAtDispatch(gpu.report);
    this.fusion = options.fusion ?? !compilesAtDispatch(gpu.report);
  }

  /**
   * The options a replacement engine is created with after this one's device is lost: the same ones
   * (adapter, matmul, vectors, ...), so that training goes on with the same kernels, less a device the
   * application passed in, which is gone.
   */
  get optionsForNewDevice(): EngineOptions {
    const { device: _lost, ...rest } = this.options;
    return rest;
  }

  /** The matmul variants this device can run. */
  get matmulVariants(): MatmulVariant[] {
    return matmulVariants(this.gpu.device, this.gpu.report.subgroupSizes);
  }

  /** The variants matmul "auto" measures: those this device can run, less the k4 ones on llvmpipe, where they are no faster and compile 0.5 s longer, at the first step. */
  get matmulCandidates(): MatmulVariant[] {
    const can = this.matmulVariants;
    return compilesAtDispatch(this.gpu.report) ? can.filter((v) => !MATMUL_TILES[v].constants.K_STEP) : can;
  }

  /** Acquires a device (or wraps the one given in options.device) and settles the matmul variant. */
  static async create(options: EngineOptions = {}): Promise<Engine> {
    options = checkEngineOptions(options);
    const gpu = await acquireGpu(options);
    const m = options.matmul ?? "auto";
    const can = matmulVariants(gpu.device, gpu.report.subgroupSizes);
    if (m !== "auto" && m !== "guess" && !can.includes(m)) {
      if (!options.device) gpu.device.destroy();
      throw new ConfigError(`Engine.create: matmul "${m}" cannot run on ${describeAdapter(gpu.report)}: it needs the "subgroups" feature with subgroups of exactly ${MATMUL_TILES[m].lanes ?? "?"} lanes (this adapter: ${gpu.report.subgroupSizes?.join("–") ?? "no subgroup size reported"}). Use "auto", or one of ${can.join(", ")}.`);
    }
    const engine = new Engine(gpu, options);
    if (m === "auto") engine.matmulVariant = (await tunedMatmul(engine.kernels, engine.gpu.report, engine.matmulCandidates, engine.vec4)).variant;
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
    if (this.disposed) this.throwIfFailed();
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
    if (typeof label !== "string") throw new ConfigError(`engine.tensor: label must be a string, got ${shown(label)}`);
    const size = checkShape(shape, `${label}: shape`);
    if (!DTYPES.includes(dtype)) throw new ConfigError(`${label}: dtype must be "f32" or "u32", got ${shown(dtype)}`);
    checkData(data, label);
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
    const size = checkShape(shape, `${label}: shape`);
    if (!DTYPES.includes(dtype)) throw new ConfigError(`${label}: dtype must be "f32" or "u32", got ${shown(dtype)}`);
    return new Tensor(this, this.createBuffer(size * 4, label), shape, dtype);
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
    if (this.disposed) throw new ConfigError(`this engine was disposed (${this.describe()}); create a new one with Engine.create()`);
    const e = this.gpu.takeError();
    if (e) throw e;
    if (this.gpu.lost) throw new GpuError(`the GPU device was lost (${this.describe()}); create a new Engine`);
  }

  /** True once dispose() was called: every later use throws a ConfigError. */
  get disposed(): boolean {
    return this.isDisposed;
  }
  private isDisposed = false;

  dispose(): void {
    this.isDisposed = true;
    this.device.destroy();
  }
}

/** Tensor data: an array of numbers or a (non-BigInt) typed array. */
function checkData(data: unknown, label: string): void {
  const typed = ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array);
  if (!typed && !Array.isArray(data)) {
    const hint = data instanceof ArrayBuffer ? "; wrap it in a view, e.g. new Float32Array(buffer)" : "";
    throw new DataError(`${label}: data must be an array of numbers or a Float32Array/Uint32Array (any non-BigInt typed array), got ${shown(data)}${hint}`);
  }
  if (typed) return;
  const bad = (data as unknown[]).findIndex((v) => typeof v !== "number");
  if (bad >= 0) throw new DataError(`${label}: data element ${bad} is ${shown((data as unknown[])[bad])}; tensor data must be numbers`);
}

/** A GPU tensor: a labelled storage buffer with a shape, owned by an engine; read() brings its values back. */
export type DType = "f32" | "u32";

export class Tensor {
  readonly size: number;

  constructor(
    readonly engine: Engine,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType = "f32",
  ) {
    if (!buffer || typeof buffer !== "object" || typeof buffer.size !== "number") throw new DataError(`Tensor: buffer must be a GPUBuffer, got ${shown(buffer)}`);
    this.size = checkShape(shape, "Tensor: shape");
    if (dtype !== "f32" && dtype !== "u32") throw new DataError(`Tensor: dtype must be "f32" or "u32", got ${shown(dtype)}`);
  }

  /** The values, after all GPU work submitted so far. */
  async read(): Promise<Float32Array | Uint32Array> {
    if (this.disposed) throw new DataError(`tensor "${this.buffer.label}": read() after dispose()`);
    const bytes = await this.engine.read(this.buffer, this.size * 4);
    return this.dtype === "f32" ? new Float32Array(bytes) : new Uint32Array(bytes);
  }

  /** The same buffer seen with another shape of the same size (Flatten). */
  reshape(shape: readonly number[]): Tensor {
    const size = checkShape(shape, "reshape: shape");
    if (size !== this.size) throw new ShapeError(`reshape: [${this.shape}] has ${this.size} elements, [${shape}] has ${size}`);
    return new Tensor(this.engine, this.buffer, shape, this.dtype);
  }

  /** True once dispose() was called; ops and read() refuse it then. */
  get disposed(): boolean {
    return this.isDisposed;
  }
  private isDisposed = false;

  dispose(): void {
    this.isDisposed = true;
    this.buffer.destroy();
  }
}
