// Pipeline registry: reflects each WGSL file into explicit bind group layouts, compiles pipelines
// asynchronously, caches them by (file, entry point, constants), and binds buffers by WGSL name.
import { ResourceType, WgslReflect } from "wgsl_reflect";
import { ConfigError, GpuError, ShaderCompileError } from "../errors.ts";
import { BufferUsage, ShaderStage } from "./flags.ts";
import { shaderSources, type ShaderFile } from "./shaders.ts";

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

interface ParsedFile {
  code: string;
  libs: { file: string; firstLine: number; lines: number }[];
  ownLines: number;
  reflect: WgslReflect;
  overrideDefaults: Map<string, string>;
  module?: Promise<GPUShaderModule>;
}

/** The file's own code plus the libraries its first line names (`// uses: lib/a.wgsl lib/b.wgsl`), appended. */
function assemble(file: string, sources: Readonly<Record<string, string>>): ParsedFile {
  const own = sources[file];
  if (own === undefined) throw new ConfigError(`unknown shader file "${file}"; known: ${Object.keys(sources).join(", ")}`);
  const uses = /^\/\/ uses:(.*)$/m.exec(own.split("\n")[0] ?? "")?.[1]?.trim().split(/\s+/) ?? [];
  let code = own;
  const libs: ParsedFile["libs"] = [];
  const ownLines = own.split("\n").length;
  for (const lib of uses) {
    const src = sources[lib];
    if (src === undefined) throw new ConfigError(`${file} uses "${lib}", which is not a known shader file`);
    libs.push({ file: lib, firstLine: code.split("\n").length + 1, lines: src.split("\n").length });
    code += "\n" + src;
  }
  const overrideDefaults = new Map<string, string>();
  for (const m of code.matchAll(/^\s*override\s+(\w+)\s*:\s*\w+\s*=\s*([^;]+);/gm)) overrideDefaults.set(m[1]!, m[2]!.trim());
  return { code, libs, ownLines, reflect: new WgslReflect(code), overrideDefaults };
}

function literal(text: string): number {
  if (text === "true") return 1;
  if (text === "false") return 0;
  const n = Number(text.replace(/[uif]$/, ""));
  if (Number.isNaN(n)) throw new ConfigError(`cannot evaluate "${text}" (only literals are supported here)`);
  return n;
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
    const fn = p.reflect.entry.compute.find((f) => f.name === entry);
    if (!fn) throw new ConfigError(`shaders/${file} has no compute entry point "${entry}"; it has ${p.reflect.entry.compute.map((f) => f.name).join(", ")}`);
    for (const name of Object.keys(constants)) {
      if (!p.overrideDefaults.has(name) && !p.reflect.overrides.some((o) => o.name === name)) {
        throw new ConfigError(`shaders/${file} has no override "${name}"; it has ${[...p.overrideDefaults.keys()].join(", ")}`);
      }
    }
    const bindings = new Map<string, BindingInfo>();
    let uniform: UniformInfo | undefined;
    for (const r of [...fn.resources].sort((x, y) => x.binding - y.binding)) {
      if (r.group !== 0) throw new ConfigError(`shaders/${file}: ${r.name} is in group ${r.group}; kernels use group 0 only`);
      if (r.resourceType === ResourceType.Uniform) {
        const s = p.reflect.getStructInfo(r.type.name);
        if (!s) throw new ConfigError(`shaders/${file}: uniform ${r.name} must be a struct`);
        uniform = { name: r.name, size: Math.max(16, Math.ceil(s.size / 16) * 16), members: new Map(s.members.map((m) => [m.name, { offset: m.offset, type: m.type.name }])) };
        bindings.set(r.name, { binding: r.binding, type: "uniform" });
      } else if (r.resourceType === ResourceType.Storage) {
        bindings.set(r.name, { binding: r.binding, type: r.access === "read_write" ? "storage" : "read-only-storage" });
      } else {
        throw new ConfigError(`shaders/${file}: ${r.name} is neither a uniform nor a storage buffer`);
      }
    }
    const wgAttr = fn.attributes?.find((a) => a.name === "workgroup_size")?.value;
    const dims = (Array.isArray(wgAttr) ? wgAttr : [wgAttr ?? "1"]).map(String);
    const size = [0, 1, 2].map((i) => {
      const t = dims[i] ?? "1";
      if (/^\d+u?$/.test(t)) return literal(t);
      return t in constants ? Number(constants[t]) : literal(p.overrideDefaults.get(t) ?? "NaN");
    }) as [number, number, number];

    const module = await this.module(file, p);
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
