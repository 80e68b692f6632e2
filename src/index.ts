// Public entry point of the library.
export { Engine, type EngineOptions } from "./engine.ts";
export { Tensor, type DType } from "./tensor.ts";
export * as ops from "./ops.ts";
export * from "./errors.ts";
export { acquireGpu, type AdapterReport, type Gpu, type GpuOptions } from "./gpu/device.ts";
export { KernelRegistry, Kernel, Dispatch } from "./gpu/registry.ts";
export type { Activation, MatmulVariant } from "./kernels.ts";
export { Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dense, Dropout, Activation as ActivationLayer, Layer } from "./model/layers.ts";
export { Sequential, type CompileOptions, type FitOptions, type History, type Logs, type Callbacks, type OptimizerConfig, type LossName } from "./model/model.ts";
export { parseIdx } from "./data/idx.ts";
export { saveSafetensors, loadSafetensors, type NamedTensor } from "./model/safetensors.ts";
export { toTfjs, fromTfjs, type TfjsModelJson } from "./model/tfjs_format.ts";
export { referenceCnn } from "./model/reference.ts";
