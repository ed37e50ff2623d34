import { setDefaultTimeout } from "bun:test";

// Tests that start real servers and browsers need more than the default 5 s on a 2-core machine.
setDefaultTimeout(30_000);
