import { createHash } from "node:crypto";
import { Command, type Redis } from "ioredis";

/**
 * A Lua script sent as one `EVALSHA`, straight to the connection: the caller's batch already is
 * the pipeline, and ioredis's auto-pipelining would wrap each call in a Pipeline of its own and
 * send it a turn later (a tenth of the Redis limiter's CPU per request went there). A Redis that
 * restarted or flushed its scripts answers NOSCRIPT: the same call then goes as `EVAL`, which
 * loads the script again.
 */
export class RedisScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  run(redis: Redis, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    return send(redis, "evalsha", [this.sha, ...tail]).catch((error: Error) => {
      if (!error.message.includes("NOSCRIPT")) throw error;
      return send(redis, "eval", [this.source, ...tail]);
    });
  }
}

function send(redis: Redis, name: string, args: string[]): Promise<unknown> {
  const command = new Command(name, args, { replyEncoding: "utf8" });
  redis.sendCommand(command);
  return command.promise;
}
