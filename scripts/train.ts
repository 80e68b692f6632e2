// npm run train: the reference Keras MNIST CNN on this machine's WebGPU adapter, with a live progress
// bar and Keras-style epoch lines; prints the test accuracy and saves the weights.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { loadMnist, subset } from "../src/data/mnist.ts";
import { referenceCnn } from "../src/index.ts";
import { saveSafetensors } from "../src/model/safetensors.ts";

const { values: a } = parseArgs({
  options: {
    epochs: { type: "string", default: "5" },
    "batch-size": { type: "string", default: "64" },
    "train-size": { type: "string", default: "60000" },
    "test-size": { type: "string", default: "10000" },
    seed: { type: "string", default: "1" },
    "learning-rate": { type: "string", default: "0.001" },
    out: { type: "string", default: "out/mnist_cnn.safetensors" },
    help: { type: "boolean", short: "h" },
  },
});
if (a.help) {
  console.log("usage: npm run train -- [--epochs 5] [--batch-size 64] [--train-size 60000] [--test-size 10000] [--seed 1] [--learning-rate 0.001] [--out out/mnist_cnn.safetensors]");
  process.exit(0);
}
const int = (name: keyof typeof a) => {
  const v = Number(a[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${a[name]}`);
  return v;
};
const [epochs, batchSize, trainSize, testSize, seed] = [int("epochs"), int("batch-size"), int("train-size"), int("test-size"), int("seed")];

const mnist = await loadMnist();
const train = subset(mnist.train, Math.min(trainSize, mnist.train.count));
const test = subset(mnist.test, Math.min(testSize, mnist.test.count));

const model = referenceCnn();
const learningRate = Number(a["learning-rate"]);
if (!(learningRate > 0)) throw new Error(`--learning-rate must be a positive number, got ${a["learning-rate"]}`);
await model.compile({ optimizer: { type: "adam", learningRate }, loss: "sparseCategoricalCrossentropy", metrics: ["accuracy"], seed });
console.log(`adapter: ${model.engine.describe()}; matmul: ${model.engine.matmulVariant}`);
console.log(model.summary());
console.log(`training on ${train.count} images, batch ${batchSize}, ${epochs} epoch(s); testing on ${test.count}`);

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
await writeFile(a.out!, saveSafetensors(await model.getWeights(), { model: "mnist_cnn", test_accuracy: result.accuracy!.toFixed(4) }));
console.log(`weights saved to ${a.out}`);
model.engine.dispose();
