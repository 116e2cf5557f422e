// Use cases of the partner API that read stored messages: 장문 메시지 가져오기 and 첨부파일 다운로드 (SPEC §6).
import { TalkgateError } from "../core/errors.ts";
import { asObject } from "../core/line-event.ts";
import type { EventLog, MediaRecord, StoredMessage } from "./store.ts";

async function findMessage(store: EventLog, senderKey: string, serialNumber: string): Promise<StoredMessage> {
  const message = await store.findMessage(senderKey, serialNumber);
  if (!message) throw new TalkgateError("-508", `no message ${serialNumber} in channel ${senderKey}`);
  if (message.unsent) throw new TalkgateError("-410", `message ${serialNumber} was unsent by the user`);
  return message;
}

/** The full text of a text message (long or not). */
export async function readText(store: EventLog, senderKey: string, serialNumber: string): Promise<string> {
  const { event } = await findMessage(store, senderKey, serialNumber);
  const message = asObject(event.message);
  const isMessage = event.type === "message" || event.type === "messageEdited";
  if (!isMessage || message?.type !== "text" || typeof message.text !== "string") {
    throw new TalkgateError("-509", `message ${serialNumber} is not a text message`);
  }
  return message.text;
}

/** A stored attachment ready to be served, with the event it belongs to. */
export interface StoredAttachment {
  media: MediaRecord & { path: string; size: number; sha256: string };
  event: StoredMessage["event"];
}

/** The attachment of a message once stored; a clear refusal while it is not (yet) or not at all. */
export async function findAttachment(
  store: EventLog,
  senderKey: string,
  serialNumber: string,
): Promise<StoredAttachment> {
  const { event, media } = await findMessage(store, senderKey, serialNumber);
  if (!media) {
    const message = asObject(event.message);
    const external = asObject(message?.contentProvider)?.originalContentUrl;
    if (typeof external === "string") {
      throw new TalkgateError("-509", `message ${serialNumber} has its content outside LINE, at ${external}`);
    }
    throw new TalkgateError(
      "-509",
      `message ${serialNumber} has no attachment (not an image, video, audio or file)`,
    );
  }
  if (media.state === "gone")
    throw new TalkgateError("-410", `the attachment is gone: ${media.goneReason ?? "deleted"}`);
  const { path, size, sha256 } = media;
  if (media.state === "pending" || path === null || size === null || sha256 === null) {
    throw new TalkgateError("-202", "the attachment is being fetched from LINE; ask again shortly");
  }
  return { media: { ...media, path, size, sha256 }, event };
}
