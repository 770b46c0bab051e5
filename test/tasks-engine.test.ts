/** The task batches are what the engine takes: a ForecastBatch and a ClassificationBatch are LayerBatches. */
import { reference } from '../lib/backends/reference';
import { LayerBatch, LayerSpec, layerParameterShapes } from '../lib/engine';
import { birthsForecast, nameGenderTask } from '../lib/tasks/defaults';
import { SequenceBatcher } from '../lib/tasks/sequences';

function weights(spec: LayerSpec): Record<string, Float64Array> {
  return Object.fromEntries(Object.entries(layerParameterShapes(spec)).map(([name, shape]) => [name, Float64Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i) * 0.1)]));
}

describe('task batches in the engine', () => {
  it('a forecasting batch runs through a recurrent layer as [W, B, D]', () => {
    const ds = birthsForecast();
    const batch = ds.batches('train', { batchSize: 5 }).next().value;
    if (!batch) throw new Error('no batch');
    const spec: LayerSpec = { cell: 'gru', inputSize: ds.pipeline.inputSize, hiddenSize: 4 };
    const asLayerBatch: LayerBatch = batch;
    const { y, hT, saved } = reference.layerForward(spec, weights(spec), asLayerBatch);
    saved.dispose();
    expect(y.length).toBe(batch.steps * batch.batch * 4);
    expect(hT.length).toBe(batch.batch * 4);
  });

  it('a padded classification batch runs with its lengths: padding gives zero outputs', () => {
    const task = nameGenderTask(0);
    const batcher = new SequenceBatcher(task.train, { batchSize: 6, buckets: [3, 6, 15] });
    const batch = [...batcher.batches({ shuffle: true, seed: 2 })].find((b) => Math.min(...b.lengths) < b.steps);
    if (!batch) throw new Error('no padded batch');
    const spec: LayerSpec = { cell: 'lstm', inputSize: task.encoder.inputSize, hiddenSize: 3 };
    const { y, saved } = reference.layerForward(spec, weights(spec), batch);
    saved.dispose();
    for (let b = 0; b < batch.batch; b++) {
      for (let t = batch.lengths[b]; t < batch.steps; t++) for (let j = 0; j < 3; j++) expect(y[(t * batch.batch + b) * 3 + j]).toBe(0);
    }
  });
});
