// The small binary classifier: five input features (x₁, x₂, x₁², x₂², x₁·x₂) → Dense(10, ReLU) →
// Dense(1, sigmoid), log loss, Adam, on a two-dimensional toy dataset; prints the loss as it falls and
// the held-out accuracy, precision, recall, F1 and confusion counts.
//   npm run example:binary -- [--dataset moons|circles|xor|spirals|all] [--epochs N] [--noise F] [--seed N]
import { parseArgs } from "node:util";
import { Dense, Sequential } from "../src/index.ts";
import { binaryReport, fiveFeatures, TOY_DATASETS, toyDataset, type ToyName } from "../src/entry/data.ts";

const { values: a } = parseArgs({
  options: {
    dataset: { type: "string", default: "all" },
    epochs: { type: "string", default: "60" },
    noise: { type: "string", default: "0.1" },
    seed: { type: "string", default: "1" },
  },
});
const names = a.dataset === "all" ? [...TOY_DATASETS] : [a.dataset as ToyName];
for (const name of names) {
  if (!TOY_DATASETS.includes(name)) throw new Error(`--dataset must be one of ${TOY_DATASETS.join(", ")} or all, got ${name}`);
}
const epochs = Number(a.epochs);
const noise = Number(a.noise);
const seed = Number(a.seed);
if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs must be a positive integer, got ${a.epochs}`);

for (const name of names) {
  const train = toyDataset(name, { n: 800, noise, seed });
  const test = toyDataset(name, { n: 400, noise, seed: seed + 1000 });
  const model = new Sequential([Dense({ units: 10, activation: "relu", inputShape: [5] }), Dense({ units: 1, activation: "sigmoid" })]);
  await model.compile({ optimizer: { type: "adam", learningRate: 0.01 }, loss: "binaryCrossentropy", seed });
  const history = await model.fit(fiveFeatures(train.points), train.labels, { epochs, batchSize: 32, validationSplit: 0.2 });
  const losses = history.history.loss;
  const marks = [0, Math.floor(epochs / 4), Math.floor(epochs / 2), epochs - 1].map((e) => `epoch ${e + 1}: ${losses[e]!.toFixed(3)}`);
  const r = binaryReport(await model.predict(fiveFeatures(test.points)), test.labels);
  const c = r.confusion;
  console.log(`${name.padEnd(8)} loss ${marks.join(", ")}`);
  console.log(`         test: accuracy ${(100 * r.accuracy).toFixed(1)}%, precision ${r.precision.toFixed(3)}, recall ${r.recall.toFixed(3)}, F1 ${r.f1.toFixed(3)}; confusion tp ${c.tp} fp ${c.fp} fn ${c.fn} tn ${c.tn}`);
  const engine = model.engine;
  model.dispose();
  engine.dispose();
}
