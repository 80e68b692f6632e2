// Pipeline registry: builds explicit bind group layouts from the shaders' build-time reflection
// (src/gpu/reflection.generated.ts), compiles pipelines asynchronously, caches them by (file, entry
// point, constants), and binds buffers by WGSL name.
import { ConfigError, GpuError, ShaderCompileError } from "../errors.ts";
import { BufferUsage, ShaderStage } from "./flags.ts";
import { shaderReflection } from "./reflection.generated.ts";
import { shaderSources, type ShaderFile } from "./shaders.ts";
import { assemble, fingerprint, type AssembledShader, type ReflectionTable, type ShaderReflection } from "./wgsl_source.ts";

export type Constants = Record<string, number | boolean>;
export type Binding = GPUBuffer | GPUBufferBinding;

interface BindingInfo {
  binding: number;
  type: GPUBufferBindingType;
}

interface UniformInfo {
  name: string;
  size: number;
  members: Map<string, { offset: number; type: string }>;
}

/** One compiled entry point with everything needed to bind and dispatch it. */
export class Kernel {
  constructor(
    readonly label: string,
    readonly pipeline: GPUComputePipeline,
    readonly layout: GPUBindGroupLayout,
    readonly bindings: ReadonlyMap<string, BindingInfo>,
    readonly uniform: UniformInfo | undefined,
    readonly workgroupSize: readonly [number, number, number],
  ) {}

  /** A bind group from buffers named as in the WGSL source; every binding must be given, and no other. */
  bindGroup(device: GPUDevice, buffers: Record<string, Binding>, label = this.label): GPUBindGroup {
    for (const name of Object.keys(buffers)) {
      if (!this.bindings.has(name)) throw new ConfigError(`${this.label}: no binding named "${name}"; it has ${[...this.bindings.keys()].join(", ")}`);
    }
    const entries: GPUBindGroupEntry[] = [];
    for (const [name, info] of this.bindings) {
      const b = buffers[name];
      if (!b) throw new ConfigError(`${this.label}: binding "${name}" was not given a buffer`);
      entries.push({ binding: info.binding, resource: "buffer" in b ? b : { buffer: b } });
    }
    return device.createBindGroup({ label, layout: this.layout, entries });
  }

  /** Packs uniform values by struct member name, at the offsets reflection found. */
  packUniform(values: Record<string, number>, target?: ArrayBuffer): ArrayBuffer {
    const u = this.uniform;
    if (!u) throw new ConfigError(`${this.label} has no uniform block`);
    const buf = target ?? new ArrayBuffer(u.size);
    const view = new DataView(buf);
    for (const [name, v] of Object.entries(values)) {
      const m = u.members.get(name);
      if (!m) throw new ConfigError(`${this.label}: uniform ${u.name} has no member "${name}"; it has ${[...u.members.keys()].join(", ")}`);
      if (m.type === "f32") view.setFloat32(m.offset, v, true);
      else if (m.type === "i32") view.setInt32(m.offset, v, true);
      else {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ConfigError(`${this.label}: uniform member "${name}" is u32 but got ${v}`);
        view.setUint32(m.offset, v, true);
      }
    }
    for (const name of u.members.keys()) {
      if (!target && !(name in values)) throw new ConfigError(`${this.label}: uniform member "${name}" was not given a value`);
    }
    return buf;
  }
}

interface ParsedFile extends AssembledShader {
  reflection?: ShaderReflection;
  module?: Promise<GPUShaderModule>;
}

/** The WGSL a file compiles to: its own code with its libraries appended (for emulation in tests). */
export function assembleShader(file: ShaderFile, sources: Readonly<Record<string, string>> = shaderSources): string {
  return assemble(file, sources).code;
}

/** Compiles and caches kernels for one device. */
export class KernelRegistry {
  private readonly files = new Map<string, ParsedFile>();
  private readonly kernels = new Map<string, Promise<Kernel>>();
  /** A 4-byte buffer for bindings an entry point declares but a configuration does not read. */
  readonly placeholder: GPUBuffer;
  /** The same for writable bindings a configuration never writes (one buffer cannot be bound both ways). */
  readonly placeholderOut: GPUBuffer;

  constructor(
    readonly device: GPUDevice,
    private readonly sources: Readonly<Record<string, string>> = shaderSources,
    private readonly reflection: ReflectionTable = shaderReflection,
  ) {
    this.placeholder = device.createBuffer({ label: "placeholder (unused binding)", size: 16, usage: BufferUsage.STORAGE });
    this.placeholderOut = device.createBuffer({ label: "placeholder (unused output)", size: 16, usage: BufferUsage.STORAGE });
  }

  private parsed(file: string): ParsedFile {
    let p = this.files.get(file);
    if (!p) {
      p = assemble(file, this.sources);
      this.files.set(file, p);
    }
    return p;
  }

  /** The file's build-time reflection, refused when the sources changed after it was generated. */
  private reflected(file: string, p: ParsedFile): ShaderReflection {
    if (!p.reflection) {
      const r = this.reflection[file];
      const regenerate = "run `npm run reflect` (scripts/reflect-shaders.mts) to regenerate src/gpu/reflection.generated.ts";
      if (!r) throw new ConfigError(`shaders/${file} has no entry in the shader reflection table; ${regenerate}`);
      if (r.fingerprint !== fingerprint(p.code)) throw new ConfigError(`shaders/${file} (or a library it uses) changed after its reflection was generated; ${regenerate}`);
      p.reflection = r;
    }
    return p.reflection;
  }

  /** Where a line of the assembled code came from. */
  private locate(p: ParsedFile, file: string, line: number): string {
    for (const lib of p.libs) {
      if (line >= lib.firstLine && line < lib.firstLine + lib.lines) return `shaders/${lib.file}:${line - lib.firstLine + 1}`;
    }
    return `shaders/${file}:${line}`;
  }

  private module(file: string, p: ParsedFile): Promise<GPUShaderModule> {
    p.module ??= (async () => {
      this.device.pushErrorScope("validation");
      const module = this.device.createShaderModule({ label: file, code: p.code });
      const [info, scoped] = await Promise.all([module.getCompilationInfo(), this.device.popErrorScope()]);
      const errors = info.messages.filter((m) => m.type === "error");
      if (errors.length > 0) {
        throw new ShaderCompileError(errors.map((m) => `${this.locate(p, file, m.lineNum)}:${m.linePos}: ${m.message}`).join("\n"));
      }
      if (scoped) throw new ShaderCompileError(`shaders/${file}: ${scoped.message}`);
      return module;
    })();
    return p.module;
  }

  /** The pipeline for one entry point and constants, compiled once and cached. */
  kernel(file: ShaderFile, entry: string, constants: Constants = {}): Promise<Kernel> {
    const key = `${file}|${entry}|${Object.keys(constants).sort().map((k) => `${k}=${Number(constants[k])}`).join(",")}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = this.build(file, entry, constants, key);
      this.kernels.set(key, k);
      k.catch(() => this.kernels.delete(key));
    }
    return k;
  }

  private async build(file: ShaderFile, entry: string, constants: Constants, label: string): Promise<Kernel> {
    const p = this.parsed(file);
    const module = await this.module(file, p); // compile errors first: they name a file and line
    const { overrides, entries } = this.reflected(file, p);
    const fn = entries[entry];
    if (!fn) throw new ConfigError(`shaders/${file} has no compute entry point "${entry}"; it has ${Object.keys(entries).join(", ")}`);
    for (const name of Object.keys(constants)) {
      if (!(name in overrides)) throw new ConfigError(`shaders/${file} has no override "${name}"; it has ${Object.keys(overrides).join(", ") || "none"}`);
    }
    const bindings = new Map<string, BindingInfo>(fn.bindings.map((b) => [b.name, { binding: b.binding, type: b.type }]));
    const u = fn.uniform;
    const uniform: UniformInfo | undefined = u && { name: u.name, size: Math.max(16, Math.ceil(u.size / 16) * 16), members: new Map(Object.entries(u.members)) };
    const size = fn.workgroupSize.map((d) => {
      if (typeof d === "number") return d;
      const v = d in constants ? constants[d] : overrides[d];
      if (v === null || v === undefined) throw new ConfigError(`shaders/${file}: ${entry}'s workgroup size uses override ${d}, which has no literal default; pass it in the constants`);
      return Number(v);
    }) as [number, number, number];

    const layout = this.device.createBindGroupLayout({
      label: `${label} layout`,
      entries: [...bindings.values()].map((b) => ({ binding: b.binding, visibility: ShaderStage.COMPUTE, buffer: { type: b.type } })),
    });
    const numeric: Record<string, number> = {};
    for (const [k, v] of Object.entries(constants)) numeric[k] = Number(v);
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.device.createComputePipelineAsync({
        label,
        layout: this.device.createPipelineLayout({ label: `${label} pipeline layout`, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: entry, constants: numeric },
      });
    } catch (e) {
      throw new GpuError(`compiling ${label} failed: ${(e as Error).message}`);
    }
    return new Kernel(label, pipeline, layout, bindings, uniform, size);
  }
}

/** One dispatch with its bind group and uniform buffer built once; encode() replays it. */
export class Dispatch {
  readonly bindGroup: GPUBindGroup;
  readonly uniformBuffer?: GPUBuffer;
  private readonly uniformData?: ArrayBuffer;

  constructor(
    private readonly device: GPUDevice,
    readonly kernel: Kernel,
    buffers: Record<string, Binding>,
    readonly grid: readonly [number, number, number],
    uniforms?: Record<string, number>,
    readonly label = kernel.label,
  ) {
    const all: Record<string, Binding> = { ...buffers };
    if (kernel.uniform) {
      if (!uniforms) throw new ConfigError(`${label}: needs uniform values for ${kernel.uniform.name}`);
      this.uniformData = kernel.packUniform(uniforms);
      this.uniformBuffer = device.createBuffer({ label: `${label} ${kernel.uniform.name}`, size: kernel.uniform.size, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
      device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformData);
      all[kernel.uniform.name] = this.uniformBuffer;
    }
    const max = device.limits.maxComputeWorkgroupsPerDimension;
    if (grid.some((g) => !Number.isInteger(g) || g < 0 || g > max)) {
      throw new GpuError(`${label}: grid ${grid.join("×")} exceeds the ${max} workgroups per dimension this adapter allows (maxComputeWorkgroupsPerDimension); make the layer or the batch smaller`);
    }
    this.bindGroup = kernel.bindGroup(device, all, label);
  }

  /** Rewrites some uniform members (e.g. a step's learning rate) before the next submit. */
  setUniforms(values: Record<string, number>): void {
    this.kernel.packUniform(values, this.uniformData);
    this.device.queue.writeBuffer(this.uniformBuffer!, 0, this.uniformData!);
  }

  encode(pass: GPUComputePassEncoder): void {
    if (this.grid[0] * this.grid[1] * this.grid[2] === 0) return;
    pass.setPipeline(this.kernel.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(this.grid[0], this.grid[1], this.grid[2]);
  }

  destroy(): void {
    this.uniformBuffer?.destroy();
  }
}

/**
 * A 2-D grid of 1-D workgroups covering n invocations (see shaders/lib/index.wgsl), folded into y past
 * `limit` workgroups (default 65535, the least every WebGPU device allows).
 */
export function grid1d(n: number, workgroup: number, limit = 65535): [number, number, number] {
  const groups = Math.ceil(n / workgroup);
  if (groups <= limit) return [groups, 1, 1];
  const y = Math.ceil(groups / limit);
  return [Math.ceil(groups / y), y, 1];
}
