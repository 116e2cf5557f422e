// Loaded into every integration test process (`node --import`): each answer of the partner API that a test gets with
// fetch or undici's request is checked against docs/openapi.json — a documented status, the documented content type, a body that matches
// the documented schema — so the document cannot drift from what talkgate answers.
import { AssertionError } from "node:assert";
import { readFileSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { Ajv2020 } from "ajv/dist/2020.js";
import { type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from "undici";

interface Operation {
  responses: Record<string, { content?: Record<string, unknown> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

const document = JSON.parse(
  readFileSync(new URL("../../docs/openapi.json", import.meta.url), "utf8"),
) as Document;
// The document is not a JSON Schema itself; only the schemas inside it are compiled, on first use.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(document, "openapi");

const pointer = (...parts: string[]) =>
  `openapi#/${parts.map((part) => part.replaceAll("~", "~0").replaceAll("/", "~1")).join("/")}`;

/** What is wrong with an answer of the documented operation at `path`, or null when it matches. */
export function answerProblem(
  method: string,
  path: string,
  status: number,
  type: string,
  body: string,
): string | null {
  const verb = method.toLowerCase();
  const operation = document.paths[path]?.[verb];
  if (!operation) return null;
  const key = [String(status), `${String(status)[0]}XX`, "default"].find((k) => operation.responses[k]);
  if (!key) return `status ${status} is not documented`;
  const content = operation.responses[key]?.content;
  if (!content || verb === "head") return null;
  if (content["*/*"]) return null;
  if (!content["application/json"])
    return content[type.split(";")[0] ?? ""]
      ? null
      : `answered ${type}, documented ${Object.keys(content).join(", ")}`;
  if (!/^application\/json\b/.test(type))
    return `answered ${type || "no content type"}, documented application/json`;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return "the body is not JSON";
  }
  const validate = ajv.getSchema(
    pointer("paths", path, verb, "responses", key, "content", "application/json", "schema"),
  );
  if (!validate) return "no schema in the document";
  if (validate(json)) return null;
  return ajv.errorsText(validate.errors, { dataVar: "body" });
}

/**
 * Wraps one dispatch of a documented route. A JSON answer is held until it is complete and checked; any
 * other is checked on its status line. A mismatch fails the request before the caller sees any of it
 * (fetch rejects with it as the cause, undici's request with it).
 */
class CheckingHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #method: string;
  readonly #path: string;
  #start: { status: number; headers: IncomingHttpHeaders; message?: string } | null = null;
  readonly #chunks: Buffer[] = [];

  constructor(method: string, path: string, inner: Dispatcher.DispatchHandler) {
    this.#method = method;
    this.#path = path;
    this.#inner = inner;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Dispatcher.DispatchHandler["onRequestUpgrade"]>>): void {
    this.#inner.onRequestUpgrade?.(...args);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
    message?: string,
  ): void {
    this.#start = { status, headers, ...(message === undefined ? {} : { message }) };
    if (this.#holding()) return;
    if (!this.#failed(controller, "")) this.#inner.onResponseStart?.(controller, status, headers, message);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#holding()) this.#chunks.push(chunk);
    else this.#inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const start = this.#start;
    if (start && this.#holding()) {
      const body = Buffer.concat(this.#chunks);
      if (this.#failed(controller, body.toString("utf8"))) return;
      this.#inner.onResponseStart?.(controller, start.status, start.headers, start.message);
      if (body.length > 0) this.#inner.onResponseData?.(controller, body);
    }
    this.#inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.#inner.onResponseError?.(controller, error);
  }

  #type(): string {
    return String(this.#start?.headers["content-type"] ?? "");
  }

  #holding(): boolean {
    return /^application\/json\b/.test(this.#type());
  }

  // Checks the answer; when it does not match the document, fails the request and says so.
  #failed(controller: Dispatcher.DispatchController, body: string): boolean {
    const status = this.#start?.status ?? 0;
    const problem = answerProblem(this.#method, this.#path, status, this.#type(), body);
    if (!problem) return false;
    this.#inner.onResponseError?.(
      controller,
      new AssertionError({
        message: `${this.#method} ${this.#path} answered ${status} not as docs/openapi.json says: ${problem}\n${body.slice(0, 500)}`,
      }),
    );
    return true;
  }
}

// Every request made without a dispatcher of its own (fetch, undici's request) passes the check.
setGlobalDispatcher(
  getGlobalDispatcher().compose((dispatch) => (options, handler) => {
    const path = (options.path ?? "").split("?")[0] ?? "";
    if (!/^\/(line|admin)\//.test(path) || !document.paths[path]) return dispatch(options, handler);
    return dispatch(options, new CheckingHandler(options.method ?? "GET", path, handler));
  }),
);
