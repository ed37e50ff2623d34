/** A background loop started with the server and drained at shutdown. */
export interface Worker {
  readonly name: string;
  stop(): Promise<void>;
}
