// npm run train: the reference Keras MNIST CNN (or, with --model resnet, the small residual network) on
// this machine's WebGPU adapter, with a live progress bar and Keras-style epoch lines; prints the test
// accuracy and saves the weights. Every option is checked before anything loads; a bad one is refused
// with a message that names it and exit status 2.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { LIMITS, parseDecimal } from "../demo/model.ts";
import { loadMnist, subset } from "../src/data/mnist.ts";
import { referenceCnn, residualNet } from "../src/entry/models.ts";
import { saveSafetensors } from "../src/model/safetensors.ts";

const USAGE = `usage: npm run train -- [options]
  --model cnn|resnet        the network (default cnn)
  --epochs N                5 (cnn) | 3 (resnet)
  --batch-size N            64 (cnn) | 32 (resnet)
  --train-size N            training images (default 60000)
  --test-size N             test images (default 10000)
  --seed N                  weight initialisation and shuffling (default 1)
  --learning-rate X         Adam's rate: 0.001 (cnn) | 0.003 (resnet)
  --lr-decay X              the rate's factor per epoch, applied smoothly per step, in (0, 1]: 1 (cnn) | 0.3 (resnet)
  --l2 X                    L2 coefficient on the CNN's kernels, in [0, 1] (default 0)
  --dropout X               dropout rate before the CNN's classifier, in [0, 1) (default 0)
  --augment-shift N         random shifts of up to N whole pixels each way, in the GPU batch gather (default 0)
  --augment-rotate DEG      random rotations of up to DEG degrees each way, in [0, 180] (default 0)
  --out PATH                where the weights go (default out/mnist_<model>.safetensors)
  --weights-dtype F32|F16   how the weights are saved (default F32; F16 halves the file)`;

function refuse(message: string): never {
  console.error(`npm run train: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let a: Record<string, string | boolean | undefined>;
try {
  ({ values: a } = parseArgs({
    options: {
      model: { type: "string", default: "cnn" },
      epochs: { type: "string" },
      "batch-size": { type: "string" },
      "train-size": { type: "string", default: "60000" },
      "test-size": { type: "string", default: "10000" },
      seed: { type: "string", default: "1" },
      "learning-rate": { type: "string" },
      "lr-decay": { type: "string" },
      l2: { type: "string", default: "0" },
      dropout: { type: "string", default: "0" },
      "augment-shift": { type: "string", default: "0" },
      "augment-rotate": { type: "string", default: "0" },
      out: { type: "string" },
      "weights-dtype": { type: "string", default: "F32" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (e) {
  refuse((e as Error).message.split(". To specify")[0]!); // node's advice on positional arguments does not apply
}
if (a.help) {
  console.log(USAGE);
  process.exit(0);
}
const models = { cnn: { epochs: "5", lr: "0.001", decay: "1", batch: "64" }, resnet: { epochs: "3", lr: "0.003", decay: "0.3", batch: "32" } };
const name = String(a.model);
if (!Object.hasOwn(models, name)) refuse(`--model must be cnn or resnet, got "${name}"`);
const choice = models[name as keyof typeof models];
const text = (flag: string, dflt: string) => (a[flag] === undefined ? dflt : String(a[flag]));
const int = (flag: string, dflt = "") => {
  const v = text(flag, dflt);
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) refuse(`--${flag} must be a positive integer, got "${v}"`);
  return n;
};
const decimal = (flag: string, dflt: string, limit: { ok: (v: number) => boolean; need: string }) => {
  const v = text(flag, dflt);
  const n = parseDecimal(v);
  if (!limit.ok(n)) refuse(`--${flag} must be ${limit.need}, got "${v}"`);
  return n;
};
const [epochs, batchSize, trainSize, testSize, seed] = [int("epochs", choice.epochs), int("batch-size", choice.batch), int("train-size"), int("test-size"), int("seed")];
const learningRate = decimal("learning-rate", choice.lr, LIMITS.learningRate);
const decay = decimal("lr-decay", choice.decay, LIMITS.lrDecay);
const l2 = decimal("l2", "0", LIMITS.l2);
const dropout = decimal("dropout", "0", LIMITS.dropout);
if (name === "resnet" && (l2 || dropout)) refuse("--l2 and --dropout apply to the CNN only; the residual network is regularised by its batch normalisation");
const shiftText = text("augment-shift", "0");
const shift = /^\d+$/.test(shiftText.trim()) ? Number(shiftText) : NaN;
if (!(shift >= 0 && shift <= 14)) refuse(`--augment-shift must be a whole number of pixels from 0 to 14, got "${shiftText}"`);
const rotate = decimal("augment-rotate", "0", { ok: (v) => v >= 0 && v <= 180, need: "a number of degrees from 0 to 180" });
const augment = shift || rotate ? { shift, rotate } : undefined;
const out = text("out", `out/mnist_${name}.safetensors`);
if (out.trim() === "") refuse("--out needs a file path");
const dtype = text("weights-dtype", "F32");
if (dtype !== "F32" && dtype !== "F16") refuse(`--weights-dtype must be F32 or F16, got "${dtype}"`);

const mnist = await loadMnist();
const train = subset(mnist.train, Math.min(trainSize, mnist.train.count));
const test = subset(mnist.test, Math.min(testSize, mnist.test.count));

const model = name === "cnn" ? referenceCnn({ dropout, l2 }) : residualNet();
const stepsPerEpoch = Math.ceil(train.count / batchSize);
const rate = decay === 1 ? learningRate : { initial: learningRate, decayRate: decay, decaySteps: stepsPerEpoch };
// The vec4 kernels and the fused convolution and pooling (EngineOptions.vectors and fusion, off by default
// on llvmpipe, which compiles each kernel at its first dispatch): minutes of training repay the compile.
await model.compile({ optimizer: { type: "adam", learningRate: rate }, loss: "sparseCategoricalCrossentropy", metrics: ["accuracy"], seed, engineOptions: { vectors: true, fusion: true } });
console.log(`adapter: ${model.engine.describe()}; matmul: ${model.engine.matmulVariant}`);
console.log(model.summary());
const extras = [decay === 1 ? "" : ` × ${decay} per epoch`, l2 ? `, L2 ${l2}` : "", dropout ? `, dropout ${dropout}` : "", augment ? `, augmented (shift ${shift} px, rotate ${rotate}°)` : ""].join("");
console.log(`training on ${train.count} images, batch ${batchSize}, ${epochs} epoch(s), Adam ${learningRate}${extras}; testing on ${test.count}`);

const tty = process.stdout.isTTY;
const start = performance.now();
let epochStart = start;
await model.fit(train.images, train.labels, {
  epochs,
  batchSize,
  validationData: [test.images, test.labels],
  augment,
  callbacks: {
    onEpochBegin(epoch) {
      epochStart = performance.now();
      console.log(`Epoch ${epoch + 1}/${epochs}`);
    },
    onBatchEnd(batch, logs) {
      if (!tty || (batch % 10 !== 9 && batch !== logs.batchesPerEpoch - 1)) return;
      const done = (batch + 1) / logs.batchesPerEpoch;
      const width = 30;
      const bar = "=".repeat(Math.floor(done * width)).padEnd(width, ".");
      const secs = (performance.now() - epochStart) / 1000;
      const rate = ((batch + 1) * batchSize) / secs;
      const metrics = logs.loss === undefined ? "" : ` - loss: ${logs.loss.toFixed(4)} - accuracy: ${logs.accuracy?.toFixed(4)}`;
      process.stdout.write(`\r${batch + 1}/${logs.batchesPerEpoch} [${bar}] ${secs.toFixed(0)}s ${rate.toFixed(0)} samples/s${metrics}   `);
    },
    onEpochEnd(_epoch, l) {
      if (tty) process.stdout.write("\r\x1b[2K");
      console.log(
        `${Math.ceil(train.count / batchSize)}/${Math.ceil(train.count / batchSize)} - ${l.seconds!.toFixed(1)}s - ${((train.count) / l.seconds!).toFixed(0)} samples/s - loss: ${l.loss.toFixed(4)} - accuracy: ${l.accuracy!.toFixed(4)} - val_loss: ${l.val_loss!.toFixed(4)} - val_accuracy: ${l.val_accuracy!.toFixed(4)}`,
      );
    },
  },
});
const wall = (performance.now() - start) / 1000;
const result = await model.evaluate(test.images, test.labels, { batchSize: 256 });
console.log(`test accuracy: ${(result.accuracy! * 100).toFixed(2)}% (loss ${result.loss.toFixed(4)}) on ${test.count} images; training took ${wall.toFixed(1)} s`);
await mkdir(dirname(out), { recursive: true });
const metadata = { model: `mnist_${name}`, test_accuracy: result.accuracy!.toFixed(4), test_images: String(test.count), epochs: String(epochs), train_images: String(train.count), learning_rate: String(learningRate), lr_decay: String(decay), l2: String(l2), dropout: String(dropout), augment_shift: String(shift), augment_rotate: String(rotate) };
await writeFile(out, saveSafetensors(await model.getWeights(), metadata, { dtype }));
console.log(`weights saved to ${out}`);
model.engine.dispose();
