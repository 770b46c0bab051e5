/**
 * Task pipelines: series forecasting and sequence classification data, metrics, baselines and the
 * default data sets. What a user needs, and no more: the readers' machinery (the CSV parser and
 * record streams, UTF-8 decoding, growable buffers, shuffles) stays internal.
 */
export type { TextSource } from './text';
export type { CsvOptions } from './csv';
export { readSeriesCsv, seriesFromColumns, seriesColumn, FILL_POLICIES } from './series';
export type { SeriesTable, FillPolicy, ReadSeriesOptions, SeriesFromColumnsOptions } from './series';
export { ForecastPipeline, ForecastDataset, FORECAST_PARTS } from './forecast';
export type {
  CovariateEncoding,
  CovariateSpec,
  NumericFeature,
  OneHotFeature,
  Feature,
  ForecastSettings,
  ForecastFeatureSpec,
  ForecastOptions,
  ForecastPart,
  ChronologicalSplit,
  ForecastBatch,
  ForecastBatchOptions,
  PartRanges,
} from './forecast';
export { tokenize, readLabelledJsonl, readLabelledCsv, labelledFromRecords, stratifiedSplit, TOKENIZATIONS } from './labelled';
export type { Tokenization, TokenizeOptions, LabelledData, TokenExamples, DenseExamples, LabelledRecord, ReadLabelledOptions, LabelledCsvOptions, StratifiedSplitOptions, SplitIndices } from './labelled';
export { SequenceEncoder, SequenceBatcher, paddingFraction, UNKNOWN_ID } from './sequences';
export type { EncoderOptions, EncodedSequences, EncodedTokens, EncodedDense, ClassificationBatch, BucketOptions, EpochOptions } from './sequences';
export { languageModelMetrics, confusionMatrix, classificationMetrics, argmaxRows, forecastErrors, seasonalScale } from './metrics';
export type { LanguageModelMetrics, ClassMetrics, ClassificationMetrics, ForecastErrors } from './metrics';
export { majorityClass, naiveForecasts, seasonalNaiveForecasts, unigramLoss } from './baselines';
export { languageModelReport, formatLanguageModelReport, classificationReport, formatClassificationReport, forecastReport, collectForecasts, formatForecastReport } from './reports';
export type { LanguageModelReport, ClassificationReport, ForecastColumnReport, ForecastReport } from './reports';
export { birthsTable, birthsForecast, nameGenderData, nameGenderTask, BIRTHS_FORECAST } from './defaults';
export type { ClassificationTask } from './defaults';
