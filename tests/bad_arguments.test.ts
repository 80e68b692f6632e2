// A catalogue of bad arguments to every public entry point: each must be refused with an EngineError
// subclass whose message names the argument. A TypeError, RangeError, DOMException or plain Error fails.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Engine } from "../src/engine.ts";
import { EngineError } from "../src/errors.ts";
import {
  ActivationLayer,
  Add,
  AveragePooling2D,
  BatchNormalization,
  Concatenate,
  Conv2D,
  Dense,
  DepthwiseConv2D,
  Dropout,
  Flatten,
  GlobalAveragePooling2D,
  Input,
  Layer,
  LayerNormalization,
  MaxPooling2D,
  Model,
  Multiply,
  Reshape,
  Sequential,
  SymbolicTensor,
  Tensor,
  acquireGpu,
} from "../src/index.ts";
import * as api from "../src/index.ts";
import * as data from "../src/entry/data.ts";
import * as io from "../src/entry/io.ts";
import * as referenceModels from "../src/entry/models.ts";
import { referenceCnn, residualNet } from "../src/entry/models.ts";
import { fromTfjs, loadSafetensors, parseIdx, saveSafetensors, toTfjs } from "../src/entry/io.ts";
import * as ops from "../src/entry/ops.ts";
import { gpuEngine } from "./gpu_helpers.ts";

/** name, what to call, and a pattern the message must match: the argument's name. */
type Case = [name: string, thunk: () => unknown, names: RegExp];

const engine = () => gpuEngine();
afterAll(async () => (await engine()).dispose());

const models: Model[] = [];
afterEach(() => {
  for (const m of models.splice(0)) m.dispose();
});

/** A fresh compiled model per case (3 inputs, 3 classes), on the shared engine. */
async function model(): Promise<Sequential> {
  const m = new Sequential([Dense({ units: 4, activation: "relu", inputShape: [3] }), Dense({ units: 3, activation: "softmax" })]);
  models.push(m);
  await m.compile({ loss: "sparseCategoricalCrossentropy", engine: await engine() });
  return m;
}
const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
const y = [0, 1, 2, 0];
const t = async (shape: number[], dtype: "f32" | "u32" = "f32") => (await engine()).tensor(new Array(shape.reduce((a, b) => a * b, 1)).fill(dtype === "u32" ? 1 : 0.5), shape, dtype);
/** Options as given, over a batch size that fits the 4 examples when they are an object. */
const withBatch = (o: unknown) => (o && typeof o === "object" && !Array.isArray(o) ? { batchSize: 2, ...o } : o) as never;
/** fit/evaluate/predict on a fresh model: options first, then x and y when given (undefined included). */
const fit = async (o: unknown, ...data: unknown[]) => (await model()).fit(data.length > 0 ? data[0] : x, data.length > 1 ? data[1] : y, withBatch(o));
const evaluate = async (o: unknown, ...data: unknown[]) => (await model()).evaluate(data.length > 0 ? data[0] : x, data.length > 1 ? data[1] : y, withBatch(o));
const predict = async (o: unknown, ...data: unknown[]) => (await model()).predict(data.length > 0 ? data[0] : x, withBatch(o));
/** compile on a fresh model, on the shared engine unless the case names one (so nothing acquires a device). */
const compile = async (o: unknown) => new Sequential([Dense({ units: 2, inputShape: [3] })]).compile((o && typeof o === "object" && !("engine" in o) ? { ...o, engine: await engine() } : o) as never);
const optimizer = (o: unknown) => compile({ loss: "sparseCategoricalCrossentropy", optimizer: o });
/** An Input of shape (8, 8, 2), for applying image layers. */
const image = () => Input({ shape: [8, 8, 2] });
const vector = () => Input({ shape: [6] });

const BAD_SHAPES: [string, unknown][] = [
  ["null", null],
  ["undefined", undefined],
  ["a string", "2,2"],
  ["a number", 4],
  ["[-4]", [-4]],
  ["[0]", [0]],
  ["[2.5]", [2.5]],
  ["[NaN]", [NaN]],
  ["[Infinity]", [Infinity]],
  ['["2"]', ["2"]],
];

const BAD_COUNTS: [string, unknown][] = [
  ["NaN", NaN],
  ["-1", -1],
  ["0", 0],
  ["2.5", 2.5],
  ["Infinity", Infinity],
  ['"8"', "8"],
  ["null", null],
  ["a BigInt", 8n],
];

const CASES: Record<string, Case[]> = {
  "Engine.create and acquireGpu": [
    ['Engine.create({ matmul: "fast" })', () => Engine.create({ matmul: "fast" as never }), /matmul.*auto.*guess.*tiled.*direct.*"fast"/],
    ["Engine.create({ matmul: 1 })", () => Engine.create({ matmul: 1 as never }), /matmul/],
    ['Engine.create({ vectors: "yes" })', () => Engine.create({ vectors: "yes" as never }), /vectors must be true or false, got "yes"/],
    ['Engine.create({ adapter: "lavapipe", matmul: "subgroup4" }) (its subgroups have 8 lanes)', () => Engine.create({ adapter: "lavapipe", matmul: "subgroup4" }), /matmul "subgroup4" cannot run on llvmpipe.*exactly 4 lanes.*8–8.*tiled, direct, subgroup8/],
    ['Engine.create({ adapter: "swiftshader", matmul: "subgroup8" }) (its subgroups have 4 lanes)', () => Engine.create({ adapter: "swiftshader", matmul: "subgroup8" }), /matmul "subgroup8" cannot run on SwiftShader.*exactly 8 lanes.*4–4.*tiled, direct, subgroup4/],
    ['Engine.create({ adapter: "cuda" })', () => Engine.create({ adapter: "cuda" as never }), /adapter.*auto.*hardware.*lavapipe.*swiftshader.*"cuda"/],
    ['Engine.create({ powerPreference: "fastest" })', () => Engine.create({ powerPreference: "fastest" as never }), /powerPreference/],
    ["Engine.create({ device: {} })", () => Engine.create({ device: {} as never }), /device/],
    ['Engine.create({ device: "gpu" })', () => Engine.create({ device: "gpu" as never }), /device/],
    ['Engine.create({ onError: "log" })', () => Engine.create({ onError: "log" as never }), /onError/],
    ['Engine.create({ poisonOutputs: "yes" })', () => Engine.create({ poisonOutputs: "yes" as never }), /poisonOutputs/],
    ["Engine.create({ checkFinite: 1 })", () => Engine.create({ checkFinite: 1 as never }), /checkFinite/],
    ['Engine.create("lavapipe")', () => Engine.create("lavapipe" as never), /options/],
    ["Engine.create(42)", () => Engine.create(42 as never), /options/],
    ['acquireGpu({ adapter: "cuda" })', () => acquireGpu({ adapter: "cuda" as never }), /adapter/],
  ],

  "engine.tensor and engine.empty": [
    ["tensor(null, [2])", async () => (await engine()).tensor(null as never, [2]), /data/],
    ["tensor(undefined, [2])", async () => (await engine()).tensor(undefined as never, [2]), /data/],
    ['tensor("ab", [2])', async () => (await engine()).tensor("ab" as never, [2]), /data/],
    ["tensor(42, [1])", async () => (await engine()).tensor(42 as never, [1]), /data/],
    ["tensor({}, [1])", async () => (await engine()).tensor({} as never, [1]), /data/],
    ["tensor(an ArrayBuffer, [2])", async () => (await engine()).tensor(new ArrayBuffer(8) as never, [2]), /data.*ArrayBuffer/],
    ['tensor([1, "a"], [2])', async () => (await engine()).tensor([1, "a"] as never, [2]), /data|element 1/],
    ["tensor([1, 2n], [2])", async () => (await engine()).tensor([1, 2n] as never, [2]), /data|element 1/],
    ["tensor(a BigInt64Array, [2])", async () => (await engine()).tensor(new BigInt64Array(2) as never, [2]), /data/],
    ["tensor(a DataView, [2])", async () => (await engine()).tensor(new DataView(new ArrayBuffer(8)) as never, [2]), /data/],
    ["tensor([1, 2], [2], \"f64\")", async () => (await engine()).tensor([1, 2], [2], "f64" as never), /dtype/],
    ["tensor([1, 2], [2], \"f32\", 5)", async () => (await engine()).tensor([1, 2], [2], "f32", 5 as never), /label/],
    ["tensor([1.5], [1], \"u32\")", async () => (await engine()).tensor([1.5], [1], "u32"), /u32/],
    ...BAD_SHAPES.map(([n, s]): Case => [`tensor([1], shape ${n})`, async () => (await engine()).tensor([1], s as never), /shape/]),
    ...BAD_SHAPES.map(([n, s]): Case => [`empty(shape ${n})`, async () => (await engine()).empty(s as never), /shape/]),
    ['empty([2], "int8")', async () => (await engine()).empty([2], "int8" as never), /dtype/],
  ],

  "ops: tensors of the wrong kind": [
    ["matmul(null, b)", async () => ops.matmul(null as never, await t([2, 2])), /matmul.*\ba\b/],
    ["matmul(a, undefined)", async () => ops.matmul(await t([2, 2]), undefined as never), /matmul.*\bb\b/],
    ["matmul(Float32Array, b)", async () => ops.matmul(new Float32Array(4) as never, await t([2, 2])), /matmul.*\ba\b.*Tensor/],
    ['matmul(a, b, "relu")', async () => ops.matmul(await t([2, 2]), await t([2, 2]), "relu" as never), /matmul.*options/],
    ["matmul(a, b, { bias: Float32Array })", async () => ops.matmul(await t([2, 2]), await t([2, 2]), { bias: new Float32Array(2) as never }), /matmul.*bias/],
    ['matmul(a, b, { activation: "gelu" })', async () => ops.matmul(await t([2, 2]), await t([2, 2]), { activation: "gelu" as never }), /activation/],
    ['matmul(a, b, { transposeA: "yes" })', async () => ops.matmul(await t([2, 2]), await t([2, 2]), { transposeA: "yes" as never }), /transposeA/],
    ["matmulBackward(a, b, null, dy)", async () => ops.matmulBackward(await t([2, 2]), await t([2, 2]), null as never, await t([2, 2])), /matmulBackward.*\by\b/],
    ["matmulBackward(a, b, y, {})", async () => ops.matmulBackward(await t([2, 2]), await t([2, 2]), await t([2, 2]), {} as never), /matmulBackward.*\bdy\b/],
    ["conv2d(null, w)", async () => ops.conv2d(null as never, await t([3, 3, 1, 2])), /conv2d.*\bx\b/],
    ["conv2d(x, [1, 2])", async () => ops.conv2d(await t([1, 4, 4, 1]), [1, 2] as never), /conv2d.*\bw\b/],
    ["conv2d(x, w, { strides: -1 })", async () => ops.conv2d(await t([1, 4, 4, 1]), await t([3, 3, 1, 2]), { strides: -1 }), /strides|S[HW]/],
    ["conv2d(x, w, { strides: 1.5 })", async () => ops.conv2d(await t([1, 4, 4, 1]), await t([3, 3, 1, 2]), { strides: 1.5 }), /strides|S[HW]/],
    ['conv2d(x, w, { strides: "2" })', async () => ops.conv2d(await t([1, 4, 4, 1]), await t([3, 3, 1, 2]), { strides: "2" as never }), /strides/],
    ["conv2d(x, w, { strides: [1] })", async () => ops.conv2d(await t([1, 4, 4, 1]), await t([3, 3, 1, 2]), { strides: [1] as never }), /strides|S[HW]/],
    ['conv2d(x, w, { padding: "full" })', async () => ops.conv2d(await t([1, 4, 4, 1]), await t([3, 3, 1, 2]), { padding: "full" as never }), /padding/],
    ["conv2dBackward(x, w, y, null)", async () => ops.conv2dBackward(await t([1, 4, 4, 1]), await t([3, 3, 1, 2]), await t([1, 2, 2, 2]), null as never), /conv2dBackward.*\bdy\b/],
    ["maxPool2d(undefined)", async () => ops.maxPool2d(undefined as never), /maxPool2d.*\bx\b/],
    ["maxPool2d(x, { poolSize: 0 })", async () => ops.maxPool2d(await t([1, 4, 4, 1]), { poolSize: 0 }), /poolSize|K[HW]/],
    ["maxPool2d(x, { poolSize: -2 })", async () => ops.maxPool2d(await t([1, 4, 4, 1]), { poolSize: -2 }), /poolSize|K[HW]/],
    ['maxPool2d(x, { poolSize: "2" })', async () => ops.maxPool2d(await t([1, 4, 4, 1]), { poolSize: "2" as never }), /poolSize/],
    ["maxPool2d(x, { strides: NaN })", async () => ops.maxPool2d(await t([1, 4, 4, 1]), { strides: NaN }), /strides|S[HW]/],
    ["maxPool2d(x, 2)", async () => ops.maxPool2d(await t([1, 4, 4, 1]), 2 as never), /maxPool2d.*options/],
    ...BAD_SHAPES.map(([n, s]): Case => [`maxPool2dBackward(argmax, dy, xShape ${n})`, async () => ops.maxPool2dBackward(await t([1, 2, 2, 1], "u32"), await t([1, 2, 2, 1]), s as never), /xShape|shape/]),
    ["maxPool2dBackward(null, dy, xShape)", async () => ops.maxPool2dBackward(null as never, await t([1, 2, 2, 1]), [1, 4, 4, 1]), /argmax/],
    ["avgPool2d(x, { padding: 1 })", async () => ops.avgPool2d(await t([1, 4, 4, 1]), { padding: 1 as never }), /padding/],
    ["avgPool2d(null)", async () => ops.avgPool2d(null as never), /avgPool2d.*\bx\b/],
    ...BAD_SHAPES.map(([n, s]): Case => [`avgPool2dBackward(dy, xShape ${n})`, async () => ops.avgPool2dBackward(await t([1, 2, 2, 1]), s as never), /xShape|shape/]),
    ['activation(x, "gelu")', async () => ops.activation(await t([4]), "gelu" as never), /activation/],
    ["activation(x, undefined)", async () => ops.activation(await t([4]), undefined as never), /activation/],
    ["relu(null)", () => ops.relu(null as never), /relu.*\bx\b/],
    ['sigmoid("x")', () => ops.sigmoid("x" as never), /sigmoid.*\bx\b/],
    ["tanh(a Float32Array)", () => ops.tanh(new Float32Array(4) as never), /tanh.*\bx\b/],
    ['activationBackward(y, dy, "gelu")', async () => ops.activationBackward(await t([4]), await t([4]), "gelu" as never), /activation/],
    ["activationBackward(y, null, relu)", async () => ops.activationBackward(await t([4]), null as never, "relu"), /\bdy\b/],
    ["biasGrad(undefined)", () => ops.biasGrad(undefined as never), /biasGrad.*\bdy\b/],
    ["softmaxCrossEntropy(logits, null)", async () => ops.softmaxCrossEntropy(await t([2, 3]), null as never), /softmaxCrossEntropy.*labels/],
    ["softmaxCrossEntropy(null, labels)", async () => ops.softmaxCrossEntropy(null as never, await t([2], "u32")), /softmaxCrossEntropy.*logits/],
    ["softmaxCrossEntropy(logits, labels, { nValid: NaN })", async () => ops.softmaxCrossEntropy(await t([2, 3]), await t([2], "u32"), { nValid: NaN }), /nValid/],
    ['softmaxCrossEntropy(logits, labels, "all")', async () => ops.softmaxCrossEntropy(await t([2, 3]), await t([2], "u32"), "all" as never), /options/],
  ],

  "ops: optimizer steps": [
    ["sgdStep(w, g, vel, { lr: NaN })", async () => ops.sgdStep(await t([4]), await t([4]), await t([4]), { lr: NaN }), /\blr\b/],
    ["sgdStep(w, g, vel, { lr: -1 })", async () => ops.sgdStep(await t([4]), await t([4]), await t([4]), { lr: -1 }), /\blr\b/],
    ['sgdStep(w, g, vel, { lr: "0.1" })', async () => ops.sgdStep(await t([4]), await t([4]), await t([4]), { lr: "0.1" as never }), /\blr\b/],
    ["sgdStep(w, g, vel, { lr, momentum: 1 })", async () => ops.sgdStep(await t([4]), await t([4]), await t([4]), { lr: 0.1, momentum: 1 }), /momentum/],
    ["sgdStep(w, g, vel, undefined)", async () => ops.sgdStep(await t([4]), await t([4]), await t([4]), undefined as never), /sgdStep.*(hyperparameters|lr)/],
    ["sgdStep(w, null, vel, { lr })", async () => ops.sgdStep(await t([4]), null as never, await t([4]), { lr: 0.1 }), /sgdStep.*\bg\b/],
    ["sgdStep(w, g, vel, { lr, decay: [] })", async () => ops.sgdStep(await t([4]), await t([4]), await t([4]), { lr: 0.1, decay: [] as never }), /decay/],
    ["adamStep(..., { lr: NaN, step: 1 })", async () => ops.adamStep(await t([4]), await t([4]), await t([4]), await t([4]), { lr: NaN, step: 1 }), /\blr\b/],
    ["adamStep(..., { lr, step: 0 })", async () => ops.adamStep(await t([4]), await t([4]), await t([4]), await t([4]), { lr: 0.1, step: 0 }), /\bstep\b/],
    ["adamStep(..., { lr, step: 1.5 })", async () => ops.adamStep(await t([4]), await t([4]), await t([4]), await t([4]), { lr: 0.1, step: 1.5 }), /\bstep\b/],
    ["adamStep(..., { lr, step, beta1: 1 })", async () => ops.adamStep(await t([4]), await t([4]), await t([4]), await t([4]), { lr: 0.1, step: 1, beta1: 1 }), /beta1/],
    ["adamStep(..., { lr, step, beta2: NaN })", async () => ops.adamStep(await t([4]), await t([4]), await t([4]), await t([4]), { lr: 0.1, step: 1, beta2: NaN }), /beta2/],
    ["adamStep(..., { lr, step, eps: 0 })", async () => ops.adamStep(await t([4]), await t([4]), await t([4]), await t([4]), { lr: 0.1, step: 1, eps: 0 }), /\beps\b/],
    ["adamStep(w, g, undefined, v, ...)", async () => ops.adamStep(await t([4]), await t([4]), undefined as never, await t([4]), { lr: 0.1, step: 1 }), /adamStep.*\bm\b/],
  ],

  "Tensor methods": [
    ...BAD_SHAPES.map(([n, s]): Case => [`reshape(${n})`, async () => (await t([2, 2])).reshape(s as never), /reshape.*shape/]),
    ["reshape([3])", async () => (await t([2, 2])).reshape([3]), /reshape/],
    ["read() after dispose()", async () => {
      const a = await t([2]);
      a.dispose();
      return a.read();
    }, /tensor.*read\(\) after dispose\(\)/],
    ["relu(a disposed tensor)", async () => {
      const a = await t([2]);
      a.dispose();
      return ops.relu(a);
    }, /relu: x was disposed/],
    ["new Tensor(engine, null, [2])", async () => new Tensor(await engine(), null as never, [2]), /buffer/],
  ],

  "Input": [
    ["Input(null)", () => Input(null as never), /Input.*shape/],
    ["Input(undefined)", () => Input(undefined as never), /Input.*shape/],
    ...BAD_SHAPES.map(([n, s]): Case => [`Input({ shape: ${n} })`, () => Input({ shape: s as never }), /Input.*shape/]),
    ["Input({ shape: [] })", () => Input({ shape: [] }), /Input.*shape/],
    ["Input({ shape: [2n] })", () => Input({ shape: [2n] as never }), /Input.*shape/],
    ["Input({ shape: [2], name: 5n })", () => Input({ shape: [2], name: 5n as never }), /Input.*name/],
    ["Input({ shape: [2], name: 5 })", () => Input({ shape: [2], name: 5 as never }), /Input.*name/],
    ['Input({ shape: [2], name: "" })', () => Input({ shape: [2], name: "" }), /Input.*name/],
  ],

  "layer builders": [
    ["Dense(undefined)", () => Dense(undefined as never), /dense.*(options|units)/],
    ["Dense(null)", () => Dense(null as never), /dense.*(options|units)/],
    ['Dense("4")', () => Dense("4" as never), /dense.*(options|units)/],
    ...BAD_COUNTS.map(([n, v]): Case => [`Dense({ units: ${n} })`, () => Dense({ units: v as never }), /units/]),
    ['Dense({ units: 2, activation: "gelu" })', () => Dense({ units: 2, activation: "gelu" as never }), /activation/],
    ['Dense({ units: 2, useBias: "no" })', () => Dense({ units: 2, useBias: "no" as never }), /useBias/],
    ["Dense({ units: 2, kernelRegularizer: { l2: -1 } })", () => Dense({ units: 2, kernelRegularizer: { l2: -1 } }), /kernelRegularizer|l2/],
    ["Dense({ units: 2, kernelRegularizer: { l2: NaN } })", () => Dense({ units: 2, kernelRegularizer: { l2: NaN } }), /kernelRegularizer|l2/],
    ["Dense({ units: 2, kernelRegularizer: 0.01 })", () => Dense({ units: 2, kernelRegularizer: 0.01 as never }), /kernelRegularizer/],
    ...BAD_SHAPES.map(([n, s]): Case => [`Dense({ units: 2, inputShape: ${n} })`, () => new Sequential([Dense({ units: 2, inputShape: s as never })]).compile({ loss: "meanSquaredError" }), /inputShape/]),
    ["Dense({ units: 2, name: 5 })", () => Dense({ units: 2, name: 5 as never }), /name/],
    ['Dense({ units: 2, trainable: "no" })', () => Dense({ units: 2, trainable: "no" as never }), /trainable/],
    ["Dense({ units: 1e10 }) at compile", async () => new Sequential([Dense({ units: 1e10, inputShape: [4] })]).compile({ loss: "meanSquaredError", engine: await engine() }), /dense_\d+\/kernel \[4, 10000000000\]/],
    ...BAD_COUNTS.map(([n, v]): Case => [`Conv2D({ filters: ${n} })`, () => Conv2D({ filters: v as never, kernelSize: 3 }), /filters/]),
    ["Conv2D({ filters: 2, kernelSize: 0 })", () => Conv2D({ filters: 2, kernelSize: 0 }), /kernelSize/],
    ["Conv2D({ filters: 2, kernelSize: [3] })", () => Conv2D({ filters: 2, kernelSize: [3] as never }), /kernelSize/],
    ["Conv2D({ filters: 2, kernelSize: undefined })", () => Conv2D({ filters: 2 } as never), /kernelSize/],
    ["Conv2D({ filters: 2, kernelSize: 3, strides: -1 })", () => Conv2D({ filters: 2, kernelSize: 3, strides: -1 }), /strides/],
    ['Conv2D({ filters: 2, kernelSize: 3, padding: "full" })', () => Conv2D({ filters: 2, kernelSize: 3, padding: "full" as never }), /padding/],
    ['Conv2D({ filters: 2, kernelSize: 3, activation: "swish" })', () => Conv2D({ filters: 2, kernelSize: 3, activation: "swish" as never }), /activation/],
    ["DepthwiseConv2D({ kernelSize: 3, depthMultiplier: 0 })", () => DepthwiseConv2D({ kernelSize: 3, depthMultiplier: 0 }), /depthMultiplier/],
    ["DepthwiseConv2D({ kernelSize: 2.5 })", () => DepthwiseConv2D({ kernelSize: 2.5 }), /kernelSize/],
    ["MaxPooling2D({ poolSize: 0 })", () => MaxPooling2D({ poolSize: 0 }), /poolSize/],
    ["MaxPooling2D({ poolSize: -2 })", () => MaxPooling2D({ poolSize: -2 }), /poolSize/],
    ["MaxPooling2D({ strides: 1.5 })", () => MaxPooling2D({ strides: 1.5 }), /strides/],
    ['MaxPooling2D({ padding: "x" })', () => MaxPooling2D({ padding: "x" as never }), /padding/],
    ['MaxPooling2D("2")', () => MaxPooling2D("2" as never), /max_pooling_2d.*options/],
    ["AveragePooling2D({ poolSize: NaN })", () => AveragePooling2D({ poolSize: NaN }), /poolSize/],
    ['GlobalAveragePooling2D("pool")', () => GlobalAveragePooling2D("pool" as never), /global_average_pooling_2d.*options/],
    ["Flatten(5)", () => Flatten(5 as never), /flatten.*options/],
    ["Flatten({ inputShape: [0] })", () => Flatten({ inputShape: [0] }), /inputShape/],
    ["Reshape({ targetShape: [-4] })", () => Reshape({ targetShape: [-4] }), /targetShape/],
    ["Reshape({ targetShape: [2.5] })", () => Reshape({ targetShape: [2.5] }), /targetShape/],
    ['Reshape({ targetShape: "2,3" })', () => Reshape({ targetShape: "2,3" as never }), /targetShape/],
    ["Reshape({ targetShape: [4] }) of 6 values", () => Reshape({ targetShape: [4] }).apply(vector()), /targetShape/],
    ["Reshape({ targetShape: [-1, 4] }) of 6 values", () => Reshape({ targetShape: [-1, 4] }).apply(vector()), /targetShape/],
    ["Dropout({ rate: 1 })", () => Dropout({ rate: 1 }), /rate/],
    ["Dropout({ rate: -0.1 })", () => Dropout({ rate: -0.1 }), /rate/],
    ["Dropout({ rate: NaN })", () => Dropout({ rate: NaN }), /rate/],
    ['Dropout({ rate: "0.5" })', () => Dropout({ rate: "0.5" as never }), /rate/],
    ["Dropout(undefined)", () => Dropout(undefined as never), /dropout.*(options|rate)/],
    ['ActivationLayer({ activation: "gelu" })', () => ActivationLayer({ activation: "gelu" as never }), /activation/],
    ["ActivationLayer({})", () => ActivationLayer({} as never), /activation/],
    ["Concatenate({ axis: 1.5 })", () => Concatenate({ axis: 1.5 }), /axis/],
    ['Concatenate({ axis: "0" })', () => Concatenate({ axis: "0" as never }), /axis/],
    ["Concatenate({ axis: 5 }) on rank-3 inputs", () => Concatenate({ axis: 5 }).apply([image(), image()]), /axis/],
    ["BatchNormalization({ momentum: 1.5 })", () => BatchNormalization({ momentum: 1.5 }), /momentum/],
    ["BatchNormalization({ momentum: NaN })", () => BatchNormalization({ momentum: NaN }), /momentum/],
    ["BatchNormalization({ epsilon: 0 })", () => BatchNormalization({ epsilon: 0 }), /epsilon/],
    ["LayerNormalization({ epsilon: -1 })", () => LayerNormalization({ epsilon: -1 }), /epsilon/],
    ['new Layer("dense", null)', () => new Layer("dense", null as never), /dense.*(config|options)/],
  ],

  "Layer.apply": [
    ["Dense.apply(null)", () => Dense({ units: 2 }).apply(null as never), /apply/],
    ["Dense.apply(undefined)", () => Dense({ units: 2 }).apply(undefined as never), /apply/],
    ['Dense.apply("x")', () => Dense({ units: 2 }).apply("x" as never), /apply/],
    ["Dense.apply([])", () => Dense({ units: 2 }).apply([]), /input/],
    ["Dense.apply(a Float32Array)", () => Dense({ units: 2 }).apply(new Float32Array(3) as never), /apply/],
    ["Dense.apply(an image)", () => Dense({ units: 2 }).apply(image()), /Flatten/],
    ["Dense.apply(a SymbolicTensor that is a weight)", () => Dense({ units: 2 }).apply(new SymbolicTensor([3], "param", "w")), /apply/],
    ["Add.apply([x])", () => Add().apply([vector()]), /input/],
    ["Add.apply([x, null])", () => Add().apply([vector(), null as never]), /apply/],
    ["Add.apply(shapes [6] and [8, 8, 2])", () => Add().apply([vector(), image()]), /shape/],
    ["Multiply.apply(x)", () => Multiply().apply(vector()), /input/],
    ["Conv2D.apply(a vector)", () => Conv2D({ filters: 2, kernelSize: 3 }).apply(vector()), /height, width, channels/],
    ["MaxPooling2D({ poolSize: 9 }).apply(8×8)", () => MaxPooling2D({ poolSize: 9 }).apply(image()), /window/],
  ],

  "Model and Sequential": [
    ["new Model(null)", () => new Model(null as never), /Model.*(inputs|options)/],
    ['new Model("x")', () => new Model("x" as never), /Model.*(inputs|options)/],
    ["new Model({ inputs: null, outputs })", () => new Model({ inputs: null as never, outputs: Dense({ units: 2 }).apply(vector()) }), /inputs/],
    ["new Model({ inputs, outputs: undefined })", () => new Model({ inputs: vector(), outputs: undefined as never }), /outputs/],
    ["new Model({ inputs: [], outputs })", () => new Model({ inputs: [], outputs: Dense({ units: 2 }).apply(vector()) }), /inputs/],
    ["new Model({ inputs: layer output })", () => {
      const a = Dense({ units: 2 }).apply(vector());
      return new Model({ inputs: a, outputs: Dense({ units: 2 }).apply(a) });
    }, /inputs/],
    ["new Model({ inputs: a hand-made SymbolicTensor })", () => {
      const a = new SymbolicTensor([3], "activation", "h");
      return new Model({ inputs: a, outputs: Dense({ units: 2 }).apply(a) });
    }, /inputs/],
    ["new Model({ inputs: a, outputs: f(b) })", () => new Model({ inputs: vector(), outputs: Dense({ units: 2 }).apply(vector()) }), /input/],
    ["new Model({ inputs, outputs, name: 5 })", () => {
      const a = vector();
      return new Model({ inputs: a, outputs: Dense({ units: 2 }).apply(a), name: 5 as never });
    }, /name/],
    ["new Sequential(null)", () => new Sequential(null as never), /Sequential.*layers/],
    ['new Sequential("dense")', () => new Sequential("dense" as never), /Sequential.*layers/],
    ["new Sequential([null])", () => new Sequential([null as never]), /Sequential.*layer/],
    ["new Sequential([{}])", () => new Sequential([{} as never]), /Sequential.*layer/],
    ["Sequential.add(undefined)", () => new Sequential().add(undefined as never), /add.*layer/],
    ["Sequential.add after compile", async () => (await model()).add(Dense({ units: 2 })), /add\(\).*compile/],
    ["new Sequential().summary()", () => new Sequential().summary(), /layers/],
    ["summary() without inputShape", () => new Sequential([Dense({ units: 2 })]).summary(), /inputShape/],
  ],

  compile: [
    ["compile()", () => compile(undefined), /compile/],
    ["compile(null)", () => compile(null), /compile/],
    ['compile("adam")', () => compile("adam"), /compile/],
    ['compile({ loss: "hinge" })', () => compile({ loss: "hinge" }), /loss/],
    ["compile({ loss: undefined })", () => compile({}), /loss/],
    ['compile({ loss, metrics: "accuracy" })', () => compile({ loss: "meanSquaredError", metrics: "accuracy" }), /metrics/],
    ['compile({ loss, metrics: ["auc"] })', () => compile({ loss: "meanSquaredError", metrics: ["auc"] }), /metric/],
    ["compile({ loss, seed: 1.5 })", () => compile({ loss: "meanSquaredError", seed: 1.5 }), /seed/],
    ["compile({ loss, seed: NaN })", () => compile({ loss: "meanSquaredError", seed: NaN }), /seed/],
    ["compile({ loss, engine: {} })", () => compile({ loss: "meanSquaredError", engine: {} }), /engine/],
    ['compile({ loss, engineOptions: { matmul: "fast" } })', () => compile({ loss: "meanSquaredError", engineOptions: { matmul: "fast" } }), /matmul/],
    ['compile({ loss, engineOptions: "x" })', () => compile({ loss: "meanSquaredError", engineOptions: "x" }), /options/],
    ['optimizer "rmsprop"', () => optimizer("rmsprop"), /optimizer/],
    ["optimizer 5", () => optimizer(5), /optimizer/],
    ["optimizer 5n", () => optimizer(5n), /optimizer/],
    ["compile({ loss, seed: 1n })", () => compile({ loss: "meanSquaredError", seed: 1n }), /seed/],
    ["optimizer null", () => optimizer(null), /optimizer/],
    ['optimizer { type: "adamw" }', () => optimizer({ type: "adamw" }), /optimizer/],
    ...([["NaN", NaN], ["-0.1", -0.1], ["0", 0], ["Infinity", Infinity], ['"0.1"', "0.1"], ["null", null], ["1n", 1n]] as [string, unknown][]).map(([n, v]): Case => [`learningRate ${n}`, () => optimizer({ type: "adam", learningRate: v }), /learningRate/]),
    ["learningRate { initial: NaN }", () => optimizer({ type: "sgd", learningRate: { initial: NaN, decayRate: 0.9, decaySteps: 10 } }), /learningRate\.initial/],
    ["learningRate { decaySteps: 0 }", () => optimizer({ type: "sgd", learningRate: { initial: 0.1, decayRate: 0.9, decaySteps: 0 } }), /learningRate\.decaySteps/],
    ['learningRate { staircase: "yes" }', () => optimizer({ type: "sgd", learningRate: { initial: 0.1, decayRate: 0.9, decaySteps: 5, staircase: "yes" } }), /staircase/],
    ["beta1 = 1", () => optimizer({ type: "adam", beta1: 1 }), /beta1/],
    ["beta1 = -0.1", () => optimizer({ type: "adam", beta1: -0.1 }), /beta1/],
    ["beta2 = NaN", () => optimizer({ type: "adam", beta2: NaN }), /beta2/],
    ["epsilon = 0", () => optimizer({ type: "adam", epsilon: 0 }), /epsilon/],
    ["momentum = 1", () => optimizer({ type: "sgd", momentum: 1 }), /momentum/],
    ['momentum = "0.9"', () => optimizer({ type: "sgd", momentum: "0.9" }), /momentum/],
    ["compile while fit runs", async () => {
      const m = await model();
      const running = m.fit(x, y, { epochs: 3, batchSize: 2 });
      try {
        return await m.compile({ loss: "sparseCategoricalCrossentropy", engine: await engine() });
      } finally {
        await running;
      }
    }, /compile\(\).*fit\(\)/],
    ["a loss that does not fit the output", () => new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [2] })]).compile({ loss: "meanSquaredError" }), /loss meanSquaredError/],
  ],

  "fit: data": [
    ...([["null", null], ["undefined", undefined], ['"abc"', "abc"], ["42", 42], ["{}", {}], ["[]", []], ["an ArrayBuffer", new ArrayBuffer(48)], ["a Float64Array", new Float64Array(12)], ["an Int32Array", new Int32Array(12)], ["[1, 2, 3]", [1, 2, 3]]] as [string, unknown][]).map(([n, v]): Case => [`fit(x = ${n})`, () => fit({}, v), /\bx\b/]),
    ["fit(x of 10 values)", () => fit({}, new Float32Array(10)), /\bx\b.*10 values/],
    ["fit(x with NaN)", () => fit({}, Float32Array.of(NaN, ...x.subarray(1))), /\bx\b.*NaN/],
    ["fit({ wrong: x })", () => fit({}, { wrong: x }), /\bx\b.*wrong/],
    ...([["null", null], ["undefined", undefined], ['"0120"', "0120"], ["42", 42], ["{}", {}], ["an ArrayBuffer", new ArrayBuffer(16)]] as [string, unknown][]).map(([n, v]): Case => [`fit(y = ${n})`, () => fit({}, x, v), /\by\b/]),
    ['fit(y = ["0", "1", "2", "0"])', () => fit({}, x, ["0", "1", "2", "0"]), /\by\b.*label 0 is "0" \(a string\)/],
    ["fit(y = [0n, 1n, 2n, 0n])", () => fit({}, x, [0n, 1n, 2n, 0n]), /\by\b.*label 0 is "0" \(a bigint\)/],
    ["fit(y = BigInt64Array)", () => fit({}, x, BigInt64Array.of(0n, 1n, 2n, 0n)), /\by\b/],
    ["fit(y = [0, 1, NaN, 0])", () => fit({}, x, [0, 1, NaN, 0]), /\by\b.*label 2 is NaN/],
    ["fit(y = [0, 1, 3, 0])", () => fit({}, x, [0, 1, 3, 0]), /\by\b.*label 2 is 3/],
    ["fit(y = 3 labels)", () => fit({}, x, [0, 1, 2]), /\by\b.*labels have 3/],
    ["validationData with a bad label", () => fit({ validationData: [x, [0, 7, 1, 2]] }), /validation.*label 1 is 7/],
    ["validationData with bad x", () => fit({ validationData: [new Float32Array(5), y] }), /validation x/],
    ['validationData "x"', () => fit({ validationData: "x" }), /validationData/],
    ["validationData [x]", () => fit({ validationData: [x] }), /validationData/],
    ["validationData with y undefined", () => fit({ validationData: [x, undefined] }), /validation y/],
  ],

  "fit: options": [
    ['fit(x, y, "fast")', () => fit("fast"), /fit.*options/],
    ["fit(x, y, 5)", () => fit(5), /fit.*options/],
    ...BAD_COUNTS.map(([n, v]): Case => [`epochs ${n}`, () => fit({ epochs: v }), /epochs/]),
    ...BAD_COUNTS.map(([n, v]): Case => [`batchSize ${n}`, () => fit({ batchSize: v }), /batchSize/]),
    ["batchSize 5 > 4 examples", () => fit({ batchSize: 5 }), /batchSize/],
    ...([["NaN", NaN], ["1", 1], ["-0.1", -0.1], ["1.5", 1.5], ['"0.5"', "0.5"], ["Infinity", Infinity], ["0.1 of 4 examples", 0.1]] as [string, unknown][]).map(([n, v]): Case => [`validationSplit ${n}`, () => fit({ validationSplit: v }), /validationSplit/]),
    ...([["NaN", NaN], ["Infinity", Infinity], ['"1/255"', "1/255"], ["null", null]] as [string, unknown][]).map(([n, v]): Case => [`inputScale ${n}`, () => fit({ inputScale: v }), /inputScale/]),
    ['shuffle "yes"', () => fit({ shuffle: "yes" }), /shuffle/],
    ['stopOnNonFinite "yes"', () => fit({ stopOnNonFinite: "yes" }), /stopOnNonFinite/],
    ["snapshotsPerEpoch 0", () => fit({ snapshotsPerEpoch: 0 }), /snapshotsPerEpoch/],
    ["snapshotsPerEpoch NaN", () => fit({ snapshotsPerEpoch: NaN }), /snapshotsPerEpoch/],
    ["recoverySnapshotEvery -1", () => fit({ recoverySnapshotEvery: -1 }), /recoverySnapshotEvery/],
    ["recoverySnapshotEvery 1.5", () => fit({ recoverySnapshotEvery: 1.5 }), /recoverySnapshotEvery/],
    ['augment "strong"', () => fit({ augment: "strong" }), /augment/],
    ["augment.shift -1", () => fit({ augment: { shift: -1 } }), /augment\.shift/],
    ["augment.rotate NaN", () => fit({ augment: { rotate: NaN } }), /augment\.rotate/],
    ["augment.zoom (unknown)", () => fit({ augment: { zoom: 2 } }), /augment.*zoom/],
    ["augment on a model without an image input", () => fit({ augment: { shift: 1 } }), /augment.*image/],
    ['callbacks "log"', () => fit({ callbacks: "log" }), /callbacks/],
    ["callbacks.onBatchEnd 5", () => fit({ callbacks: { onBatchEnd: 5 } }), /onBatchEnd/],
    ['callbacks.onEpochEnd "x"', () => fit({ callbacks: { onEpochEnd: "x" } }), /onEpochEnd/],
    ["a learning rate schedule that gives NaN at step 1", async () => {
      const m = new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [3] })]);
      models.push(m);
      await m.compile({ loss: "sparseCategoricalCrossentropy", optimizer: { type: "sgd", learningRate: (s: number) => (s < 1 ? 0.1 : NaN) }, engine: await engine() });
      return m.fit(x, y, { batchSize: 2 });
    }, /learning rate/],
    ["a learning rate schedule that returns a string", async () => {
      const m = new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [3] })]);
      models.push(m);
      await m.compile({ loss: "sparseCategoricalCrossentropy", optimizer: { type: "adam", learningRate: (() => "0.1") as never }, engine: await engine() });
      return m.fit(x, y, { batchSize: 2 });
    }, /learning rate/],
  ],

  "fit: misuse": [
    ["fit before compile", () => new Sequential([Dense({ units: 3, inputShape: [3] })]).fit(x, y), /compile\(\)/],
    ["fit after model.dispose()", async () => {
      const m = await model();
      m.dispose();
      return m.fit(x, y);
    }, /model.*disposed/],
    ["fit after engine.dispose()", async () => {
      const own = await Engine.create();
      const m = new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [3] })]);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: own });
      own.dispose();
      return m.fit(x, y);
    }, /engine.*disposed/],
    ["fit after the device was lost", async () => {
      const own = await Engine.create();
      const m = new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [3] })]);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: own });
      own.device.destroy();
      await own.device.lost;
      return m.fit(x, y);
    }, /device was lost/],
    ["fit right after device.destroy(), before the loss is reported (no snapshot to resume from)", async () => {
      const own = await Engine.create();
      const m = new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [3] })]);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: own });
      own.device.destroy();
      return m.fit(x, y, { batchSize: 2 });
    }, /device was lost/],
    ["two concurrent fit() calls", async () => {
      const m = await model();
      const first = m.fit(x, y, { epochs: 2, batchSize: 2 });
      try {
        return await m.fit(x, y);
      } finally {
        await first;
      }
    }, /fit\(\) is already running/],
    ["evaluate after model.dispose()", async () => {
      const m = await model();
      m.dispose();
      return m.evaluate(x, y);
    }, /model.*disposed/],
    ["predict on a disposed engine", async () => {
      const own = await Engine.create();
      const m = new Sequential([Dense({ units: 3, activation: "softmax", inputShape: [3] })]);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: own });
      own.dispose();
      return m.predict(x);
    }, /engine.*disposed/],
    ["engine.tensor on a disposed engine", async () => {
      const own = await Engine.create();
      own.dispose();
      return own.tensor([1], [1]);
    }, /engine.*disposed/],
    ["ops on a disposed engine", async () => {
      const own = await Engine.create();
      const a = own.tensor([1, 2], [2]);
      own.dispose();
      return ops.relu(a);
    }, /engine.*disposed/],
    ["compile on a disposed engine", async () => {
      const own = await Engine.create();
      own.dispose();
      return new Sequential([Dense({ units: 3, inputShape: [3] })]).compile({ loss: "meanSquaredError", engine: own });
    }, /engine.*disposed/],
  ],

  "evaluate and predict": [
    ["evaluate(null, y)", () => evaluate({}, null), /\bx\b/],
    ["evaluate(x, undefined)", () => evaluate({}, x, undefined), /\by\b/],
    ["evaluate(x, ['a'...])", () => evaluate({}, x, ["a", "b", "c", "d"]), /\by\b/],
    ['evaluate(x, y, "all")', () => evaluate("all"), /evaluate.*options/],
    ...BAD_COUNTS.map(([n, v]): Case => [`evaluate batchSize ${n}`, () => evaluate({ batchSize: v }), /batchSize/]),
    ["evaluate inputScale NaN", () => evaluate({ inputScale: NaN }), /inputScale/],
    ["predict(null)", () => predict({}, null), /\bx\b/],
    ["predict(undefined)", () => predict({}, undefined), /\bx\b/],
    ["predict(an ArrayBuffer)", () => predict({}, new ArrayBuffer(48)), /\bx\b/],
    ["predict(x of 5 values)", () => predict({}, new Float32Array(5)), /\bx\b/],
    ['predict(x, "fast")', () => predict("fast"), /predict.*options/],
    ...BAD_COUNTS.map(([n, v]): Case => [`predict batchSize ${n}`, () => predict({ batchSize: v }), /batchSize/]),
    ["predict inputScale Infinity", () => predict({ inputScale: Infinity }), /inputScale/],
  ],

  "per-batch calls": [
    ["trainOnBatch(null, y)", async () => (await model()).trainOnBatch(null, y), /\bx\b/],
    ["trainOnBatch(x, undefined)", async () => (await model()).trainOnBatch(x, undefined), /\by\b/],
    ["trainOnBatch(x, labels out of range)", async () => (await model()).trainOnBatch(x, [0, 1, 3, 0]), /\by\b.*label 2 is 3/],
    ["trainOnBatch(x, 3 labels for 4 examples)", async () => (await model()).trainOnBatch(x, [0, 1, 2]), /\by\b/],
    ["trainOnBatch(x of 5 values, y)", async () => (await model()).trainOnBatch(new Float32Array(5), y), /\bx\b/],
    ['trainOnBatch(x, y, "fast")', async () => (await model()).trainOnBatch(x, y, "fast" as never), /trainOnBatch.*options/],
    ["trainOnBatch(x, y, { batchSize })", async () => (await model()).trainOnBatch(x, y, { batchSize: 2 } as never), /trainOnBatch.*batchSize/],
    ["trainOnBatch inputScale NaN", async () => (await model()).trainOnBatch(x, y, { inputScale: NaN }), /inputScale/],
    ["trainOnBatch before compile", () => new Sequential([Dense({ units: 3, inputShape: [3] })]).trainOnBatch(x, y), /compile\(\)/],
    ["testOnBatch(x, ['a'...])", async () => (await model()).testOnBatch(x, ["a", "b", "c", "d"]), /\by\b/],
    ["testOnBatch(an ArrayBuffer, y)", async () => (await model()).testOnBatch(new ArrayBuffer(48), y), /\bx\b/],
    ["predictOnBatch(undefined)", async () => (await model()).predictOnBatch(undefined), /\bx\b/],
    ["predictOnBatch(x, { inputScale: 'a' })", async () => (await model()).predictOnBatch(x, { inputScale: "a" as never }), /inputScale/],
    ["kernelTimes(0)", async () => (await model()).kernelTimes(0), /kernelTimes.*batchSize/],
    ['kernelTimes("64")', async () => (await model()).kernelTimes("64" as never), /kernelTimes.*batchSize/],
    ["predictOnBatch after dispose", async () => {
      const m = await model();
      m.dispose();
      return m.predictOnBatch(x);
    }, /disposed/],
  ],

  "weights, memory, plan": [
    ["getWeights before compile", () => new Sequential([Dense({ units: 3, inputShape: [3] })]).getWeights(), /compile\(\)/],
    ["getWeights after dispose", async () => {
      const m = await model();
      m.dispose();
      return m.getWeights();
    }, /disposed/],
    ["setWeights(null)", async () => (await model()).setWeights(null as never), /weights/],
    ["setWeights(undefined)", async () => (await model()).setWeights(undefined as never), /weights/],
    ['setWeights("w")', async () => (await model()).setWeights("w" as never), /weights/],
    ["setWeights([null])", async () => (await model()).setWeights([null as never]), /weights\[0\]/],
    ["setWeights with an ArrayBuffer as data", async () => {
      const m = await model();
      return m.setWeights((await m.getWeights()).map((w) => ({ ...w, data: w.data.buffer as never })));
    }, /weights\[0\]|data/],
    ["setWeights with a string as data", async () => {
      const m = await model();
      return m.setWeights((await m.getWeights()).map((w) => ({ ...w, data: "1234" as never })));
    }, /weights\[0\]|data/],
    ["setWeights with shape null", async () => {
      const m = await model();
      return m.setWeights((await m.getWeights()).map((w) => ({ ...w, shape: null as never })));
    }, /weights\[0\]|shape/],
    ["setWeights with NaN", async () => {
      const m = await model();
      return m.setWeights((await m.getWeights()).map((w, i) => ({ ...w, data: i === 3 ? w.data.map(() => NaN) : w.data })));
    }, /weights.*element 0 is NaN/],
    ...BAD_COUNTS.map(([n, v]): Case => [`memory(${n})`, async () => (await model()).memory(v as never), /batchSize/]),
    ['memory(8, "yes")', async () => (await model()).memory(8, "yes" as never), /training/],
    ...BAD_COUNTS.map(([n, v]): Case => [`plan(${n})`, async () => (await model()).plan(v as never), /batchSize/]),
  ],

  "file formats": [
    ["saveSafetensors(null)", () => saveSafetensors(null as never), /saveSafetensors.*tensors/],
    ['saveSafetensors("w")', () => saveSafetensors("w" as never), /saveSafetensors.*tensors/],
    ["saveSafetensors([null])", () => saveSafetensors([null as never]), /saveSafetensors.*tensor/],
    ["saveSafetensors with name 5", () => saveSafetensors([{ name: 5 as never, shape: [1], data: new Float32Array(1) }]), /name/],
    ["saveSafetensors with data [1, 2]", () => saveSafetensors([{ name: "a", shape: [2], data: [1, 2] as never }]), /"a".*Float32Array/],
    ["saveSafetensors with shape [-1]", () => saveSafetensors([{ name: "a", shape: [-1], data: new Float32Array(1) }]), /"a".*shape/],
    ["saveSafetensors with shape null", () => saveSafetensors([{ name: "a", shape: null as never, data: new Float32Array(1) }]), /"a".*shape/],
    ["saveSafetensors with two tensors named a", () => saveSafetensors([{ name: "a", shape: [1], data: new Float32Array(1) }, { name: "a", shape: [1], data: new Float32Array(1) }]), /"a"/],
    ['saveSafetensors with a tensor named "__metadata__"', () => saveSafetensors([{ name: "__metadata__", shape: [1], data: new Float32Array(1) }]), /__metadata__/],
    ['saveSafetensors(tensors, "meta")', () => saveSafetensors([], "meta" as never), /metadata/],
    ["saveSafetensors(tensors, { a: 5 })", () => saveSafetensors([], { a: 5 } as never), /metadata/],
    ...([["null", null], ["undefined", undefined], ['"abc"', "abc"], ["42", 42], ["{}", {}], ["[1, 2]", [1, 2]]] as [string, unknown][]).map(([n, v]): Case => [`loadSafetensors(${n})`, () => loadSafetensors(v as never), /safetensors file.*bytes/]),
    ["loadSafetensors(header null)", () => loadSafetensors(withHeader("null")), /header/],
    ["loadSafetensors(a tensor without data_offsets)", () => loadSafetensors(withHeader('{"a":{"dtype":"F32","shape":[1]}}', 4)), /"a".*data_offsets/],
    ["loadSafetensors(negative dimension)", () => loadSafetensors(withHeader('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4)), /"a".*shape/],
    ["loadSafetensors(overlapping offsets)", () => loadSafetensors(withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)), /data_offsets.*overlap/],
    ["toTfjs(null)", () => toTfjs(null as never), /toTfjs/],
    ["toTfjs({})", () => toTfjs({} as never), /toTfjs/],
    ["toTfjs(an uncompiled model)", () => toTfjs(new Sequential([Dense({ units: 2, inputShape: [3] })])), /compile\(\)/],
    ["fromTfjs(null, bin)", () => fromTfjs(null, new Uint8Array(0)), /model\.json/],
    ['fromTfjs("{}", bin)', () => fromTfjs("{}", new Uint8Array(0)), /model\.json/],
    ["fromTfjs(json, null)", async () => fromTfjs((await tfjs()).modelJson, null as never), /weights\.bin/],
    ['fromTfjs(json, "bin")', async () => fromTfjs((await tfjs()).modelJson, "bin" as never), /weights\.bin/],
    ["fromTfjs(json, [1, 2])", async () => fromTfjs((await tfjs()).modelJson, [1, 2] as never), /weights\.bin/],
    ["fromTfjs(json without modelTopology)", () => fromTfjs({ format: "layers-model" }, new Uint8Array(0)), /modelTopology/],
    ["fromTfjs(a layer without config)", async () => {
      const { modelJson, weightsBin } = await tfjs();
      const json = structuredClone(modelJson) as unknown as { modelTopology: { config: { layers: Record<string, unknown>[] } } };
      delete json.modelTopology.config.layers[1]!.config;
      return fromTfjs(json, weightsBin);
    }, /layer 1.*config/],
    ["fromTfjs(a layer with units -3)", async () => {
      const { modelJson, weightsBin } = await tfjs();
      const json = structuredClone(modelJson) as unknown as { modelTopology: { config: { layers: { config: Record<string, unknown> }[] } } };
      json.modelTopology.config.layers[1]!.config.units = -3;
      return fromTfjs(json, weightsBin);
    }, /units/],
    ["fromTfjs(weights.bin 4 bytes short)", async () => {
      const { modelJson, weightsBin } = await tfjs();
      return fromTfjs(modelJson, weightsBin.subarray(4));
    }, /weights\.bin/],
    ...([["null", null], ["undefined", undefined], ['"abc"', "abc"], ["42", 42], ["{}", {}], ["[0, 0, 8, 1]", [0, 0, 8, 1]]] as [string, unknown][]).map(([n, v]): Case => [`parseIdx(${n})`, () => parseIdx(v as never), /IDX file.*bytes/]),
    ["parseIdx(an empty ArrayBuffer)", () => parseIdx(new ArrayBuffer(0)), /IDX file/],
  ],

  "toy data and reports": [
    ['toyDataset("swirl")', () => data.toyDataset("swirl" as never), /toy dataset/],
    ["toyDataset n 0", () => data.toyDataset("xor", { n: 0 }), /\bn\b/],
    ["toyDataset noise 2", () => data.toyDataset("xor", { noise: 2 }), /noise/],
    ["fiveFeatures(odd length)", () => data.fiveFeatures(new Float32Array(5)), /fiveFeatures/],
    ["binaryReport(null, labels)", () => data.binaryReport(null as never, [1]), /outputs/],
    ["binaryReport(outputs, labels of another length)", () => data.binaryReport([0.5], [1, 0]), /labels/],
    ["binaryReport label 3", () => data.binaryReport([0.5], [3]), /label/],
    ["binaryReport threshold 0", () => data.binaryReport([0.5], [1], 0), /threshold/],
    ["confusionMatrix classes 1.5", () => data.confusionMatrix([0.5], [0], 1.5), /classes/],
    ["confusionMatrix label -1", () => data.confusionMatrix([0.5, 0.5], [-1], 2), /label/],
  ],

  "reference models": [
    ["referenceCnn().fit(x of a vector model)", async () => {
      const m = referenceCnn();
      models.push(m);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: await engine() });
      return m.fit(x, y);
    }, /\bx\b.*28,\s?28,\s?1/],
    ['referenceCnn().compile({ loss: "binaryCrossentropy" })', () => referenceCnn().compile({ loss: "binaryCrossentropy" }), /loss binaryCrossentropy/],
    ['residualNet().fit(x, y = "labels")', async () => {
      const m = residualNet();
      models.push(m);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: await engine() });
      return m.fit(new Uint8Array(784 * 2), "labels");
    }, /\by\b/],
    ["residualNet().predict(x, { batchSize: -1 })", async () => {
      const m = residualNet();
      models.push(m);
      await m.compile({ loss: "sparseCategoricalCrossentropy", engine: await engine() });
      return m.predict(new Uint8Array(784 * 2), { batchSize: -1 });
    }, /batchSize/],
  ],
};

/** A safetensors file with this header text and `data` zero bytes after it. */
function withHeader(header: string, data = 0): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

async function tfjs() {
  return toTfjs(await model());
}

/** Runs a thunk and gives back what it threw (or undefined). */
async function thrown(thunk: () => unknown): Promise<unknown> {
  try {
    await thunk();
  } catch (e) {
    return e;
  }
  return undefined;
}

const describeError = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${e.message}` : `not an Error: ${String(e)}`);

describe("bad arguments are refused with an EngineError that names the argument", () => {
  for (const [entry, cases] of Object.entries(CASES)) {
    describe(entry, () => {
      for (const [name, thunk, names] of cases) {
        it(name, async () => {
          const err = await thrown(thunk);
          expect(err, "nothing was thrown").toBeDefined();
          expect(err instanceof EngineError, `expected an EngineError, got ${describeError(err)}`).toBe(true);
          expect((err as Error).message).toMatch(names);
        });
      }
    });
  }

  it("the catalogue reaches every public function and class (by name in some case)", () => {
    const names = Object.values(CASES).flat().map(([n]) => n).join("\n");
    // Low-level GPU building blocks for embedding apps, documented as such; the error classes are what is asserted.
    const lowLevel = ["KernelRegistry", "Kernel", "Dispatch", "EngineError", "DataError", "ShapeError", "ConfigError", "GpuError", "ShaderCompileError", "DivergenceError"];
    // Functions and classes only (constants such as RESNET_WIDTHS take no arguments), of every entry.
    const callable = ([k, v]: [string, unknown]) => typeof v === "function" && !lowLevel.includes(k);
    const exported = [api, io, ops, data, referenceModels].flatMap((entry) => Object.entries(entry).filter(callable).map(([k]) => k));
    expect(exported.filter((k) => !new RegExp(`\\b${k}\\b`).test(names))).toEqual([]);
  });
});

describe("setWeights is atomic", () => {
  it("a NaN in the last tensor leaves every weight as it was", async () => {
    const m = await model();
    const before = await m.getWeights();
    const bad = before.map((w, i) => ({ ...w, data: i === before.length - 1 ? Float32Array.from(w.data, (v, j) => (j === 1 ? NaN : v + 1)) : w.data.map((v) => v + 1) }));
    expect(() => m.setWeights(bad)).toThrow(/"dense_\d+\/bias" element 1 is NaN/);
    const after = await m.getWeights();
    for (const [i, w] of after.entries()) expect(Buffer.from(w.data.buffer).equals(Buffer.from(before[i]!.data.buffer)), w.name).toBe(true);
  });

  it("a misshaped or unexpected last tensor leaves every weight as it was", async () => {
    const m = await model();
    const before = await m.getWeights();
    const plus = before.map((w) => ({ ...w, data: w.data.map((v) => v + 1) }));
    expect(() => m.setWeights([...plus.slice(0, -1), { ...plus.at(-1)!, shape: [4] }])).toThrow(/has shape \[4\]/);
    expect(() => m.setWeights([...plus, { name: "extra/kernel", shape: [1], data: new Float32Array(1) }])).toThrow(/unexpected tensors extra\/kernel/);
    const after = await m.getWeights();
    for (const [i, w] of after.entries()) expect(Buffer.from(w.data.buffer).equals(Buffer.from(before[i]!.data.buffer)), w.name).toBe(true);
  });
});
