// Test-only: a clock that moves only when told. Pass it as `new Queue(path, { testClock })`.

/** Milliseconds since the epoch, moved by hand. */
export declare class ManualClock {
  /** Starts at startMs (milliseconds since the epoch), or now. */
  constructor(startMs?: number)
  advance(ms: number): void
  set(ms: number): void
  now(): number
}
