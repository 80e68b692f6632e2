// npm run train: the reference Keras MNIST CNN (or, with --model resnet, the small residual network) on
// this machine's WebGPU adapter, with a live progress bar and Keras-style epoch lines; prints the test
// accuracy and saves the weights.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { loadMnist, subset } from "../src/data/mnist.ts";
import { referenceCnn, residualNet } from "../src/index.ts";
import { saveSafetensors } from "../src/model/safetensors.ts";

const { values: a } = parseArgs({
  options: {
    model: { type: "string", default: "cnn" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    "train-size": { type: "string", default: "60000" },
    "test-size": { type: "string", default: "10000" },
    seed: { type: "string", default: "1" },
    "learning-rate": { type: "string" },
    "lr-decay": { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (a.help) {
  console.log("usage: npm run train -- [--model cnn|resnet] [--epochs 5 (cnn) | 3 (resnet)] [--batch-size 64 (cnn) | 32 (resnet)] [--train-size 60000] [--test-size 10000] [--seed 1] [--learning-rate 0.001 (cnn) | 0.003 (resnet)] [--lr-decay 1 (cnn) | 0.3 (resnet): factor per epoch] [--out out/mnist_<model>.safetensors]");
  process.exit(0);
}
const models = { cnn: { build: referenceCnn, epochs: "5", lr: "0.001", decay: "1", batch: "64" }, resnet: { build: residualNet, epochs: "3", lr: "0.003", decay: "0.3", batch: "32" } };
const choice = models[a.model as keyof typeof models];
if (!choice) throw new Error(`--model must be cnn or resnet, got ${a.model}`);
a.epochs ??= choice.epochs;
a["batch-size"] ??= choice.batch;
a["learning-rate"] ??= choice.lr;
a["lr-decay"] ??= choice.decay;
a.out ??= `out/mnist_${a.model}.safetensors`;
const int = (name: keyof typeof a) => {
  const v = Number(a[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${a[name]}`);
  return v;
};
const [epochs, batchSize, trainSize, testSize, seed] = [int("epochs"), int("batch-size"), int("train-size"), int("test-size"), int("seed")];

const mnist = await loadMnist();
const train = subset(mnist.train, Math.min(trainSize, mnist.train.count));
const test = subset(mnist.test, Math.min(testSize, mnist.test.count));

const model = choice.build();
const learningRate = Number(a["learning-rate"]);
if (!(learningRate > 0)) throw new Error(`--learning-rate must be a positive number, got ${a["learning-rate"]}`);
const decay = Number(a["lr-decay"]);
if (!(decay > 0 && decay <= 1)) throw new Error(`--lr-decay must be in (0, 1] (the learning rate's factor per epoch), got ${a["lr-decay"]}`);
const stepsPerEpoch = Math.ceil(train.count / batchSize);
const rate = decay === 1 ? learningRate : { initial: learningRate, decayRate: decay, decaySteps: stepsPerEpoch };
await model.compile({ optimizer: { type: "adam", learningRate: rate }, loss: "sparseCategoricalCrossentropy", metrics: ["accuracy"], seed });
console.log(`adapter: ${model.engine.describe()}; matmul: ${model.engine.matmulVariant}`);
console.log(model.summary());
console.log(`training on ${train.count} images, batch ${batchSize}, ${epochs} epoch(s), Adam ${learningRate}${decay === 1 ? "" : ` × ${decay} per epoch`}; testing on ${test.count}`);

const tty = process.stdout.isTTY;
const start = performance.now();
let epochStart = start;
await model.fit(train.images, train.labels, {
  epochs,
  batchSize,
  validationData: [test.images, test.labels],
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
await mkdir(dirname(a.out!), { recursive: true });
await writeFile(a.out!, saveSafetensors(await model.getWeights(), { model: `mnist_${a.model}`, test_accuracy: result.accuracy!.toFixed(4) }));
console.log(`weights saved to ${a.out}`);
model.engine.dispose();
