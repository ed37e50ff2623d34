/**
 * Whether requests arrive faster than a threshold, judged over the last tenth of a second. In-flight
 * counts are no use for this: a saturated server leaves requests unread in socket buffers.
 */
export class TrafficGauge {
  private windowStart = 0;
  private count = 0;
  private lastRate = 0;

  constructor(
    private readonly busyPerSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = 100,
  ) {}

  arrived(): void {
    this.count++;
  }

  busy(): boolean {
    const now = this.now();
    const elapsed = now - this.windowStart;
    if (elapsed >= this.windowMs) {
      this.lastRate = (this.count * 1000) / elapsed;
      this.windowStart = now;
      this.count = 0;
    }
    return this.lastRate >= this.busyPerSecond;
  }
}
