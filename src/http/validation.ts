// Request validation in talkgate's terms: JSON bodies taken as sent (no coercion, unknown fields refused),
// query strings read strictly (an integer is digits, a boolean is true or false), every problem named by its field.
import type { FastifyInstance, FastifySchemaValidationError, FastifyServerOptions } from "fastify";
import { TalkgateError } from "../core/errors.ts";
import { storableText } from "../core/storable-text.ts";

/** Deepest nesting of a JSON body; far deeper than any real request (Flex Messages included). */
export const MAX_BODY_DEPTH = 64;

/** The Ajv options of every route schema: what the document says is what the server enforces. */
export const AJV_OPTIONS: NonNullable<FastifyServerOptions["ajv"]> = {
  customOptions: {
    // Query strings are coerced by `coerceQuery` (strictly); bodies are JSON and are taken as sent.
    coerceTypes: false,
    // An unknown field is an error (a typo such as `notification_disable` must not pass silently).
    removeAdditional: false,
    useDefaults: false,
    allErrors: true,
    // Errors then carry their schema, from which the messages below take allowed values and descriptions.
    verbose: true,
  },
};

/**
 * Adds to the routes of `scope` what runs before their schemas: strict query coercion, and the depth bound
 * of JSON bodies (checked before anything walks them recursively).
 */
export function installValidation(scope: FastifyInstance): void {
  scope.addHook("preValidation", async (request) => {
    const schema = request.routeOptions.schema?.querystring as SchemaNode | undefined;
    if (schema?.properties && typeof request.query === "object" && request.query !== null)
      coerceQuery(schema, request.query as Record<string, unknown>);
    if (isPlain(request.body) && nestedDeeper(request.body, MAX_BODY_DEPTH))
      throw new TalkgateError("-405", `body: nested more than ${MAX_BODY_DEPTH} levels deep`);
    for (const [part, value] of [
      ["path", request.params],
      ["query", request.query],
      ["body", request.body],
    ] as const) {
      const field = unstorableText(value, part);
      if (field !== null)
        throw new TalkgateError("-405", `${field}: contains a NUL character or an unpaired surrogate`);
    }
  });
}

/**
 * The path of the first string in `value` that no database can hold as text (a NUL character, or UTF-16 that
 * is not well-formed Unicode), or null when there is none.
 */
export function unstorableText(value: unknown, path: string): string | null {
  if (typeof value === "string") return storableText(value) ? null : path;
  // Parsed JSON, and the query and path objects (their parsers give them prototypes of their own); never bytes
  // or streams.
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || "pipe" in value)
    return null;
  for (const [key, inner] of Object.entries(value)) {
    const found = unstorableText(inner, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`);
    if (found !== null) return found;
  }
  return null;
}

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  description?: string;
  enum?: unknown[];
  anyOf?: SchemaNode[];
  const?: unknown;
}

const INTEGER = /^-?(0|[1-9][0-9]{0,15})$/;

/** Turns query string values into the integers and booleans their schema declares; anything else stays a string. */
export function coerceQuery(schema: SchemaNode, query: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(query)) {
    const type = schema.properties?.[name]?.type;
    if (typeof value !== "string") continue;
    if (type === "integer" && INTEGER.test(value) && Number.isSafeInteger(Number(value)))
      query[name] = Number(value);
    else if (type === "boolean" && (value === "true" || value === "false")) query[name] = value === "true";
  }
}

// JSON's objects and arrays (not a Buffer, a stream…).
function isPlain(value: unknown): value is object {
  if (value === null || typeof value !== "object") return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return Array.isArray(value) || proto === Object.prototype || proto === null;
}

// True when `value` has more than `max` levels of objects and arrays; never descends further than that.
function nestedDeeper(value: unknown, max: number): boolean {
  if (!isPlain(value)) return false;
  if (max === 0) return true;
  for (const inner of Object.values(value)) if (nestedDeeper(inner, max - 1)) return true;
  return false;
}

const MAX_LISTED = 5;

const TYPE_WORDS: Record<string, string> = {
  integer: "must be an integer",
  number: "must be a number",
  string: "must be a string",
  boolean: "must be true or false",
  object: "must be a JSON object",
  array: "must be an array",
  null: "must be null",
};

/** Fastify's `schemaErrorFormatter`: one message naming each field and what is wrong with it. */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], part: string): Error {
  const lines: string[] = [];
  for (const error of errors) {
    const line = describe(error, part);
    // An anyOf reports each branch it tried, then itself; its own line says it all.
    if (line !== null && !lines.includes(line)) lines.push(line);
  }
  const shown = lines.slice(0, MAX_LISTED);
  if (lines.length > MAX_LISTED) shown.push(`${lines.length - MAX_LISTED} more`);
  return new Error(shown.join("; ") || `${part}: not valid`);
}

function describe(error: FastifySchemaValidationError, part: string): string | null {
  const params = error.params as Record<string, unknown>;
  const at = fieldOf(error.instancePath);
  const field = (name?: unknown) =>
    [at, typeof name === "string" ? name : ""].filter(Boolean).join(".").replace(/\.\[/g, "[") ||
    (part === "querystring" ? "query" : part);
  const schema = (error as { parentSchema?: SchemaNode }).parentSchema;
  if (error.schemaPath.includes("/anyOf/")) return null;
  switch (error.keyword) {
    case "required":
      return `${field(params.missingProperty)}: missing`;
    case "additionalProperties":
      return `${field(params.additionalProperty)}: unknown field`;
    case "type":
      return `${field()}: ${TYPE_WORDS[String(params.type)] ?? `must be of type ${String(params.type)}`}`;
    case "enum":
      return `${field()}: must be one of ${(params.allowedValues as unknown[]).map(quote).join(", ")}`;
    case "const":
      return `${field()}: must be ${quote(params.allowedValue)}`;
    case "anyOf": {
      const allowed = schema?.anyOf?.map((branch) => branch.const);
      if (allowed?.every((value) => value !== undefined))
        return `${field()}: must be one of ${allowed.map(quote).join(", ")}`;
      return `${field()}: matches none of the allowed forms`;
    }
    case "minimum":
    case "exclusiveMinimum":
      return `${field()}: must be ${error.keyword === "minimum" ? "at least" : "more than"} ${String(params.limit)}`;
    case "maximum":
    case "exclusiveMaximum":
      return `${field()}: must be ${error.keyword === "maximum" ? "at most" : "less than"} ${String(params.limit)}`;
    case "multipleOf":
      return `${field()}: must be a multiple of ${String(params.multipleOf)}`;
    case "minLength":
      return `${field()}: must have at least ${String(params.limit)} character${params.limit === 1 ? "" : "s"}`;
    case "maxLength":
      return `${field()}: must have at most ${String(params.limit)} characters`;
    case "minItems":
      return `${field()}: must have at least ${String(params.limit)} item${params.limit === 1 ? "" : "s"}`;
    case "maxItems":
      return `${field()}: must have at most ${String(params.limit)} items`;
    case "pattern":
      return `${field()}: ${schema?.description ? `must be ${schema.description}` : "is not in the expected form"}`;
    default:
      return `${field()}: ${error.message ?? "is not valid"}`;
  }
}

// "/messages/0/text" → "messages[0].text"
function fieldOf(instancePath: string): string {
  return instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join("")
    .replace(/^\./, "");
}

function quote(value: unknown): string {
  return JSON.stringify(value);
}
