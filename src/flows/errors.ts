/** A step that failed for good (after its retries): what its run reports. */
export class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly errorType: string,
    readonly errorMessage: string,
  ) {
    super(`step ${step} failed: ${errorType}: ${errorMessage}`);
  }
}
