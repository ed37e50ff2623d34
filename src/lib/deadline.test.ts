import { describe, expect, test } from "bun:test";
import { DeadlineExceeded, DeadlineQueue, withinDeadline } from "./deadline";

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Milliseconds until `promise` settles, and how. */
async function timed<T>(promise: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await promise;
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

describe("DeadlineQueue", () => {
  test("should pass an answer given in time through, and forget the deadline", async () => {
    const queue = new DeadlineQueue(50);
    const answer = deferred<string>();
    const result = queue.within(answer.promise);
    expect(queue.size).toBe(1);
    answer.resolve("ok");
    expect(await result).toBe("ok");
    expect(queue.size).toBe(0);
  });

  test("should pass a failure given in time through unchanged", async () => {
    const queue = new DeadlineQueue(50);
    const failure = new Error("redis said no");
    const answer = deferred<string>();
    const result = timed(queue.within(answer.promise));
    answer.reject(failure);
    const { error, ms } = await result;
    expect(error).toBe(failure);
    expect(ms).toBeLessThan(50);
  });

  test("should reject with DeadlineExceeded when no answer comes, on time", async () => {
    const queue = new DeadlineQueue(40);
    const { error, ms } = await timed(queue.within(new Promise<never>(() => {})));
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect((error as Error).message).toBe("no answer within 40 ms");
    expect(ms).toBeGreaterThanOrEqual(39);
    expect(ms).toBeLessThan(40 + 80);
    expect(queue.size).toBe(0);
  });

  test("should settle once: an answer after the deadline is ignored, a late failure raises nothing", async () => {
    const queue = new DeadlineQueue(20);
    const late = deferred<string>();
    const lateFailure = deferred<string>();
    const settled: unknown[] = [];
    const first = queue.within(late.promise).then(
      (value) => settled.push(value),
      (error) => settled.push(error),
    );
    const second = queue.within(lateFailure.promise).catch((error) => error);
    await first;
    expect(await second).toBeInstanceOf(DeadlineExceeded);
    late.resolve("too late");
    lateFailure.reject(new Error("too late as well"));
    await Bun.sleep(5);
    expect(settled).toHaveLength(1);
    expect(settled[0]).toBeInstanceOf(DeadlineExceeded);
  });

  test("should time each deadline from its own start, with one timer for all", async () => {
    const queue = new DeadlineQueue(60);
    const first = timed(queue.within(new Promise<never>(() => {})));
    await Bun.sleep(30);
    const second = timed(queue.within(new Promise<never>(() => {})));
    const [a, b] = await Promise.all([first, second]);
    expect(a.error).toBeInstanceOf(DeadlineExceeded);
    expect(b.error).toBeInstanceOf(DeadlineExceeded);
    expect(a.ms).toBeGreaterThanOrEqual(59);
    expect(b.ms).toBeGreaterThanOrEqual(59);
    expect(b.ms).toBeLessThan(60 + 80);
  });

  test("should keep thousands pending: those answered in time resolve, the rest expire in order", async () => {
    const queue = new DeadlineQueue(50);
    const answers = Array.from({ length: 5000 }, () => deferred<number>());
    const expired: number[] = [];
    const results = answers.map((answer, i) =>
      queue.within(answer.promise).catch((error) => {
        expect(error).toBeInstanceOf(DeadlineExceeded);
        expired.push(i);
        return -1;
      }),
    );
    expect(queue.size).toBe(5000);
    // Every even one answers in time, the odd ones never do.
    for (let i = 0; i < answers.length; i += 2) answers[i]?.resolve(i);
    const values = await Promise.all(results);
    for (let i = 0; i < values.length; i++) expect(values[i]).toBe(i % 2 === 0 ? i : -1);
    expect(expired).toEqual(Array.from({ length: 2500 }, (_, k) => 2 * k + 1));
    expect(queue.size).toBe(0);
  });

  test("should keep working after going idle", async () => {
    const queue = new DeadlineQueue(15);
    expect((await timed(queue.within(new Promise<never>(() => {})))).error).toBeInstanceOf(DeadlineExceeded);
    await Bun.sleep(30);
    expect(await queue.within(Promise.resolve(7))).toBe(7);
    const { error, ms } = await timed(queue.within(new Promise<never>(() => {})));
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect(ms).toBeGreaterThanOrEqual(14);
  });
});

describe("withinDeadline", () => {
  test("should keep durations apart: a short deadline does not wait behind a long one", async () => {
    const long = timed(withinDeadline(new Promise<never>(() => {}), 300));
    const short = timed(withinDeadline(new Promise<never>(() => {}), 20));
    const { error, ms } = await short;
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect(ms).toBeLessThan(20 + 80);
    expect((await long).ms).toBeGreaterThanOrEqual(299);
    expect(await withinDeadline(Promise.resolve("fine"), 20)).toBe("fine");
  });
});
