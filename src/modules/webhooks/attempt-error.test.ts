import { describe, expect, test } from "bun:test";
import { attemptError } from "./attempt-error";

const URL = "https://93.184.215.14:5804/hooks/T0KEN-in-path?token=SEKRET-QUERY";
const withCode = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("a failed attempt as stored", () => {
  test.each([
    [
      withCode(
        "ERR_TLS_CERT_ALTNAME_INVALID",
        `ERR_TLS_CERT_ALTNAME_INVALID fetching "${URL}". For more information, pass \`verbose: true\` in the second argument to fetch()`,
      ),
      "ERR_TLS_CERT_ALTNAME_INVALID. For more information, pass `verbose: true` in the second argument to fetch()",
    ],
    [withCode("InvalidHTTPResponse", `InvalidHTTPResponse fetching "${URL}"`), "InvalidHTTPResponse"],
    [new Error(`connect failed to ${URL} (refused)`), "connect failed to (the receiver's URL) (refused)"],
  ])("never holds the receiver's URL: %s", (error, stored) => {
    const text = attemptError(error, 10_000);
    expect(text).toBe(stored);
    expect(text).not.toContain("T0KEN");
    expect(text).not.toContain("SEKRET");
  });

  test("keeps what says what went wrong", () => {
    const refused = withCode(
      "ECONNREFUSED",
      "ECONNREFUSED: Unable to connect. Is the computer able to access the url?",
    );
    expect(attemptError(refused, 10_000)).toBe(refused.message);
    expect(attemptError(new DOMException("timed out", "TimeoutError"), 2500)).toBe("no answer within 2500 ms");
    expect(attemptError("thrown text", 10_000)).toBe("unknown error");
  });
});
