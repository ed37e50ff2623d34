/**
 * Domain errors carried to the edge as RFC 9457 problem details.
 * Services throw these; the errors plugin renders them. No framework import here.
 */

export interface FieldError {
  /** Where the value came from: body, query, params, headers. */
  readonly in: string;
  /** Dotted path of the offending field, e.g. `labels.team`; empty for the whole part. */
  readonly field: string;
  readonly message: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  request_id?: string;
  errors?: readonly FieldError[];
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function statusTitle(status: number): string {
  return TITLES[status] ?? "Error";
}

export function problemType(slug: string): string {
  return `urn:warden:problem:${slug}`;
}

export class HttpProblem extends Error {
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    readonly slug: string,
    readonly detail: string,
    readonly options: {
      errors?: readonly FieldError[];
      headers?: Record<string, string>;
      extensions?: Record<string, unknown>;
    } = {},
  ) {
    super(detail);
    this.name = "HttpProblem";
    this.headers = options.headers ?? {};
  }

  toBody(requestId: string | undefined): ProblemBody {
    return {
      ...this.options.extensions,
      type: problemType(this.slug),
      title: statusTitle(this.status),
      status: this.status,
      detail: this.detail,
      ...(requestId ? { request_id: requestId } : {}),
      ...(this.options.errors ? { errors: this.options.errors } : {}),
    };
  }
}

export const badRequest = (detail: string, errors?: readonly FieldError[]) =>
  new HttpProblem(400, "bad-request", detail, { errors });
export const notFound = (detail = "No resource matches this path.") => new HttpProblem(404, "not-found", detail);
export const conflict = (detail: string) => new HttpProblem(409, "conflict", detail);
/** 422 naming one offending field. */
export const invalidField = (field: string, message: string, where = "body") =>
  new HttpProblem(422, "validation", message, { errors: [{ in: where, field, message }] });

/** A body that is no object where every route's body is one: named as the body, not as a field. */
export function bodyNotAnObject(): HttpProblem {
  const message = "Expected object";
  return new HttpProblem(422, "validation", `Invalid body. The request body as a whole: ${message}.`, {
    errors: [{ in: "body", field: "", message }],
  });
}
