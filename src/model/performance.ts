/** The shape of one batching iteration, as a performance model sees it. */
export interface IterationShape {
  /** Prompt tokens processed by the prefill tasks in the batch. */
  readonly prefillTokens: number;
  readonly numPrefill: number;
  readonly numDecode: number;
  /** Sum of the context lengths of the decode tasks (for models where decode cost grows with context). */
  readonly decodeContextTokens: number;
}

/** Iteration-time predictor for one (model, hardware, tensor-parallel) combination. */
export interface IterationTimeModel {
  /** Seconds for one iteration of a batch of this shape. */
  iterationTime(shape: IterationShape): number;
  /** Unloaded latency of one request alone on an instance: prefill time and per-token decode time. */
  unloaded(promptTokens: number): { ttft_s: number; tbt_s: number };
}

/** Chooses an IterationTimeModel for an instance; one implementation per `performance_model.type`. */
export interface PerformanceModel {
  readonly name: string;
  forInstance(model: string, hardware: string, tensorParallelism: number): IterationTimeModel;
}
