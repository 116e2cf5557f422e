// Bodies over the limit: refused before they are read (from Content-Length, instead of 100 Continue), and the 413
// reaches a client that is still sending (no reset before it can read it); counted and logged for webhooks.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { lineSignature } from "../src/core/signature.ts";
import { API_KEY, CHANNEL_SECRET, SENDER_KEY, type Stack, startStack } from "./support/stack.ts";

interface RawAnswer {
  /** Everything the server sent, as text. */
  text: string;
  /** Body bytes the client got to write before the server's answer ended the exchange. */
  written: number;
  /** The socket error, if the connection failed (a reset loses the answer). */
  error: string | null;
}

/**
 * Sends a request by hand: `head` (the request line and headers), then `bodyBytes` of body as fast as the
 * socket takes them (chunked when `chunked`), unless `waitForContinue` (then only after a 100 Continue),
 * while reading whatever comes back until the server closes.
 */
function rawRequest(
  port: number,
  head: string,
  bodyBytes: number,
  options: { chunked?: boolean; waitForContinue?: boolean } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunk = Buffer.alloc(64 * 1024, 0x7b);
    let text = "";
    let written = 0;
    let error: string | null = null;
    let sending = false;
    const pump = () => {
      while (written < bodyBytes && !socket.destroyed && socket.writable) {
        const piece = chunk.subarray(0, Math.min(chunk.length, bodyBytes - written));
        written += piece.length;
        const wire = options.chunked
          ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")])
          : piece;
        if (!socket.write(wire)) return void socket.once("drain", pump);
      }
      if (options.chunked && written >= bodyBytes && socket.writable) socket.write("0\r\n\r\n");
    };
    const startSending = () => {
      if (sending) return;
      sending = true;
      pump();
    };
    socket.on("data", (data) => {
      text += data.toString("latin1");
      if (options.waitForContinue && text.startsWith("HTTP/1.1 100 Continue\r\n\r\n")) startSending();
    });
    // Whatever the client still wants to write after the server's end is not an error of the exchange.
    socket.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") error = e.code ?? e.message;
    });
    socket.on("close", () => resolve({ text, written, error }));
    socket.write(head);
    if (!options.waitForContinue) startSending();
  });
}

const MiB = 1024 * 1024;

describe("bodies over the limit", () => {
  let stack: Stack;
  let port: number;
  const logged: Array<Record<string, unknown>> = [];
  before(async () => {
    stack = await startStack({
      logger: pino({ level: "info" }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    });
    port = Number(new URL(stack.talkgate.url).port);
  });
  after(() => stack.close());

  const webhookHead = (headers: string) =>
    `POST /line/webhook/${SENDER_KEY} HTTP/1.1\r\nhost: talkgate\r\ncontent-type: application/json\r\n${headers}\r\n`;

  test("a client writing 3 MiB to the webhook reads the 413 every time", async () => {
    for (let i = 0; i < 10; i++) {
      const answer = await rawRequest(port, webhookHead(`content-length: ${3 * MiB}\r\n`), 3 * MiB);
      assert.equal(answer.error, null, `try ${i}: the connection was reset before the answer was read`);
      assert.match(answer.text, /^HTTP\/1\.1 413 /, `try ${i}`);
      assert.match(answer.text, /connection: close/i);
      assert.match(
        answer.text,
        /\{"code":"-413","message":"body: 3145728 bytes, more than the 2097152 this route takes"\}$/,
      );
    }
  });

  test("a chunked body that grows past the limit is answered 413 too", async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await rawRequest(port, webhookHead("transfer-encoding: chunked\r\n"), 3 * MiB, {
        chunked: true,
      });
      assert.equal(answer.error, null, `try ${i}`);
      assert.match(answer.text, /^HTTP\/1\.1 413 /, `try ${i}`);
      assert.match(answer.text, /"code":"-413"/);
    }
  });

  test("Expect: 100-continue is answered 413 instead of 100 when the declared body is too large", async () => {
    const answer = await rawRequest(
      port,
      webhookHead(`content-length: ${3 * MiB}\r\nexpect: 100-continue\r\n`),
      3 * MiB,
      { waitForContinue: true },
    );
    assert.match(answer.text, /^HTTP\/1\.1 413 /);
    assert.equal(answer.written, 0, "the body was never sent");
  });

  test("Expect: 100-continue within the limit gets 100 Continue, then the answer", async () => {
    const body = JSON.stringify({ destination: "U0", events: [] });
    const signature = lineSignature(CHANNEL_SECRET, body);
    const socket = connect(port, "127.0.0.1");
    let text = "";
    const closed = new Promise((resolve) => socket.on("close", resolve));
    socket.on("data", (data) => {
      text += data.toString();
      if (text === "HTTP/1.1 100 Continue\r\n\r\n") socket.write(body);
      if (text.includes('"code":"0"')) socket.end();
    });
    socket.write(
      webhookHead(
        `content-length: ${Buffer.byteLength(body)}\r\nx-line-signature: ${signature}\r\nexpect: 100-continue\r\n`,
      ),
    );
    await closed;
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  test("the partner API's JSON limit (1 MiB) answers 413 the same way", async () => {
    const head =
      `POST /line/message/send HTTP/1.1\r\nhost: talkgate\r\ncontent-type: application/json\r\n` +
      `authorization: Bearer ${API_KEY}\r\ncontent-length: ${2 * MiB}\r\n\r\n`;
    const answer = await rawRequest(port, head, 2 * MiB);
    assert.equal(answer.error, null);
    assert.match(answer.text, /^HTTP\/1\.1 413 /);
  });

  test("webhook refusals of every kind are counted and logged, 413 included", async () => {
    const scrape = async () => (await fetch(`${stack.talkgate.url}/metrics`)).text();
    const refused = (text: string) =>
      Number(
        /talkgate_webhooks_refused_total\{sender_key="1656168303",code="-413"\} (\d+)/.exec(text)?.[1] ?? 0,
      );
    const received = (text: string) =>
      Number(/talkgate_webhooks_received_total\{sender_key="1656168303"\} (\d+)/.exec(text)?.[1] ?? 0);
    const before = await scrape();
    await rawRequest(port, webhookHead(`content-length: ${3 * MiB}\r\n`), 3 * MiB);
    const after = await scrape();
    assert.equal(refused(after) - refused(before), 1);
    assert.equal(received(after) - received(before), 1);
    assert.ok(logged.some((line) => line.msg === "webhook:refused" && line.code === "-413"));
  });
});
