/**
 * Hand-made report inputs with every field the report reads: a diagnosis in diagnose()'s JSON
 * form (Contract B) and a telemetry log (Contract C), deterministic (no Math.random).
 */
import type { ReportDiagnosis } from '../../lib/diagnostics/report';
import type { TelemetryRecord } from '../../lib/train/telemetry';

/** Every chart the full report draws, in page order. */
export const ALL_CHARTS = ['loss', 'grad-norm', 'clip-rate', 'per-lag', 'jacobian', 'truncation-bias', 'spectral-radius'];

export function fullDiagnosis(T = 40): ReportDiagnosis {
  return {
    perLag: Array.from({ length: T }, (_, m) => 2 * Math.exp(-0.1 * m)),
    truncationBias: [4, 8, 16, 32].map((k) => ({ k, relativeError: Math.exp(-k / 8), cosine: 1 - Math.exp(-k / 8) / 2 })),
    spectralRadius: [0.93, 1.05],
    singularValue: [1.4, 1.6],
    gates: ['hh'],
    jacobian: {
      method: 'estimate',
      byLayer: [0, 1].map((layer) => ({
        layer,
        direction: 0,
        norm: Array.from({ length: T }, (_, m) => Math.exp(-0.05 * (layer + 1) * m)),
        meanSquare: Array.from({ length: T }, (_, m) => Math.exp(-0.1 * (layer + 1) * m)),
        standardError: Array.from({ length: T }, (_, m) => 0.01 * Math.exp(-0.1 * (layer + 1) * m)),
      })),
    },
  };
}

export function fullLog(updates = 300, truncate: number | null = 16): TelemetryRecord[] {
  const log: TelemetryRecord[] = [{ type: 'run', task: 'adding', model: { cell: 'tanh', numLayers: 2, hiddenSize: 32, bidirectional: false }, truncate, k1: null, k2: null, optimizer: { kind: 'adam' }, seed: 1 }];
  for (let s = 1; s <= updates; s++) {
    const gradNorm = 3 + 2 * Math.sin(s / 7);
    log.push({ type: 'update', step: s, loss: 1 / Math.sqrt(s) + 0.02 * Math.cos(s), gradNorm, clipped: gradNorm > 4, clipScale: gradNorm > 4 ? 4 / gradNorm : 1, lr: 1e-3 });
    if (s % 50 === 0) {
      log.push({ type: 'profile', step: s, perLag: Array.from({ length: 40 }, (_, m) => Math.exp(-m * 0.05 * (1 + s / updates))), spectralRadius: [0.9 + s / 3000, 1.1 - s / 3000] });
      log.push({ type: 'validation', step: s, epoch: s / 100, metrics: { loss: 1 / Math.sqrt(s) + 0.1, perplexity: null } });
    }
  }
  return log;
}
