// Device acquisition: navigator.gpu in the browser, Dawn in Node with a CPU Vulkan fallback, and
// reporting of device loss and uncaptured GPU errors.
import { oneOf, shown } from "../args.ts";
import { ConfigError, GpuError } from "../errors.ts";
import { CPU_ARCHITECTURES, type AdapterRequest } from "./adapter_kind.ts";

/** What the engine runs on, in words a person can check. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (lavapipe, SwiftShader, WARP) and adapters that say they are a fallback. */
  isCpu: boolean;
  /** "browser" (navigator.gpu) or "dawn" (the webgpu npm package in Node). */
  runtime: "browser" | "dawn";
  /** The Vulkan driver file Dawn was pointed at, when the engine chose one. */
  icd?: string;
  features: string[];
  /** The adapter's smallest and largest subgroup, in lanes, where it says. */
  subgroupSizes?: [number, number];
}

/** [min, max] subgroup size from adapter info (Chrome and Dawn report them), or undefined. */
function subgroupSizesOf(info: GPUAdapterInfo | undefined): [number, number] | undefined {
  const i = info as { subgroupMinSize?: number; subgroupMaxSize?: number } | undefined;
  return i?.subgroupMinSize && i.subgroupMaxSize ? [i.subgroupMinSize, i.subgroupMaxSize] : undefined;
}

export interface GpuOptions extends AdapterRequest {
  /** Use a device the application already has instead of acquiring one. */
  device?: GPUDevice;
  /** Called for device loss and uncaptured GPU errors (default: console.error). */
  onError?: (error: GpuError) => void;
}

export const GPU_OPTIONS = ["device", "powerPreference", "adapter", "onError"] as const;

/** Checks GpuOptions before anything is acquired; `what` names the caller. */
export function checkGpuOptions(opts: unknown, what: string): GpuOptions {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts)) throw new ConfigError(`${what}: options must be an object { ${GPU_OPTIONS.join(", ")}, ... }, got ${shown(opts)}`);
  const o = opts as GpuOptions;
  oneOf(o.adapter, `${what}: adapter`, ["auto", "hardware", "lavapipe", "swiftshader"]);
  oneOf(o.powerPreference, `${what}: powerPreference`, ["high-performance", "low-power"]);
  if (o.onError !== undefined && typeof o.onError !== "function") throw new ConfigError(`${what}: onError must be a function (error) => void, got ${shown(o.onError)}`);
  const d = o.device as Partial<GPUDevice> | undefined;
  if (d !== undefined && (typeof d !== "object" || d === null || typeof d.createBuffer !== "function" || typeof d.queue !== "object")) {
    throw new ConfigError(`${what}: device must be a GPUDevice (from adapter.requestDevice()), got ${shown(d)}`);
  }
  return o;
}

/** An acquired device with its adapter report; `takeError()` returns (and clears) the first GPU error seen. */
export interface Gpu {
  device: GPUDevice;
  report: AdapterReport;
  lost: boolean;
  takeError(): GpuError | undefined;
  /** Keeps Dawn's instance alive as long as the device is in use. */
  readonly instance?: unknown;
}


function reportOf(adapter: GPUAdapter, runtime: AdapterReport["runtime"], icd?: string): AdapterReport {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isCpu: CPU_ARCHITECTURES.test(text) || Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter && CPU_ARCHITECTURES.test(text)),
    runtime,
    icd,
    features: [...adapter.features].sort(),
    subgroupSizes: subgroupSizesOf(info),
  };
}

function describe(r: AdapterReport): string {
  return `${r.description || r.device || r.architecture} (${r.vendor}${r.isCpu ? ", CPU" : ", GPU"}, ${r.runtime})`;
}

/**
 * The Node-only half (src/gpu/node.ts: Dawn, the Vulkan driver search, the tuning cache file), imported
 * by a specifier no bundler follows, so a browser build neither bundles it nor splits it into a chunk.
 * "./node.js" is src/gpu/node.ts under tsx and Vitest, and dist/lib/node.js beside the library's core.
 */
export function nodeOnly(file = "./node.js"): Promise<typeof import("./node.ts")> {
  return import(/* @vite-ignore */ file);
}

/** Acquires a device on the best adapter this machine has and wires up error reporting. */
export async function acquireGpu(opts: GpuOptions = {}): Promise<Gpu> {
  opts = checkGpuOptions(opts, "acquireGpu");
  const onError = opts.onError ?? ((e: GpuError) => console.error(e.message));
  let device = opts.device;
  let report: AdapterReport;
  let instance: unknown;
  if (device) {
    const info = device.adapterInfo ?? ({ vendor: "", architecture: "", device: "", description: "" } as GPUAdapterInfo);
    report = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isCpu: CPU_ARCHITECTURES.test(`${info.architecture} ${info.description}`), runtime: typeof process !== "undefined" && !globalThis.navigator?.gpu ? "dawn" : "browser", features: [...device.features].sort(), subgroupSizes: subgroupSizesOf(device.adapterInfo) };
  } else {
    let adapter: GPUAdapter;
    let runtime: AdapterReport["runtime"];
    let icd: string | undefined;
    const browserGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (browserGpu) {
      const a = await browserGpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
      if (!a) throw new GpuError("navigator.gpu exists but returned no adapter. Enable WebGPU for this browser (chrome://flags/#enable-unsafe-webgpu, or --enable-unsafe-webgpu), or update the GPU driver.");
      adapter = a;
      runtime = "browser";
    } else if (typeof process !== "undefined" && process.versions?.node) {
      ({ adapter, instance, icd } = await (await nodeOnly()).nodeAdapter(opts));
      runtime = "dawn";
    } else {
      throw new GpuError("This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Firefox, and serve the page over https or http://localhost: WebGPU exists only in secure contexts.");
    }
    report = reportOf(adapter, runtime, icd);
    // Timestamps for kernel timing; subgroups for the subgroup matmul (src/kernels.ts), where offered.
    const features = (["timestamp-query", "subgroups"] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
    const l = adapter.limits;
    device = await adapter.requestDevice({
      label: "gradwgsl",
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
  }
  let firstError: GpuError | undefined;
  const gpu: Gpu = {
    device,
    report,
    lost: false,
    instance,
    takeError() {
      const e = firstError;
      firstError = undefined;
      return e;
    },
  };
  const raise = (e: GpuError) => {
    firstError ??= e;
    onError(e);
  };
  device.addEventListener("uncapturederror", (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    raise(new GpuError(`GPU ${err.constructor?.name ?? "error"} on ${describe(report)}: ${err.message}`));
  });
  void device.lost.then((info) => {
    gpu.lost = true;
    if (info.reason !== "destroyed") raise(new GpuError(`GPU device lost on ${describe(report)}: ${info.message || info.reason}. Acquire a new device (the engine's fit() does this from its last snapshot).`));
  });
  return gpu;
}

export { describe as describeAdapter };
