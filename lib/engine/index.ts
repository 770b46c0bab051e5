/** The recurrent engine's public surface: its contract (types, parameter layout) and the dropout masks. */
export type {
  CellKind,
  LayerSpec,
  NormalizedLayerSpec,
  LayerWeights,
  LayerInput,
  LayerBatch,
  LayerForwardOptions,
  SavedForward,
  LayerForwardResult,
  LayerBackwardArgs,
  LayerBackwardResult,
  LayerBackend,
  ParameterKind,
  ParameterEntry,
} from './spec';
export { CELL_KINDS, gatesPerCell, hasCellState, numDirections, layerInputSize, layerOutputSize, parameterName, layerParameterTable, layerParameterShapes } from './spec';
export { dropoutBits, dropoutThreshold, dropoutScales } from './dropout';
