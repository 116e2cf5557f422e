// Use cases of the partner API that read stored messages: 장문 메시지 가져오기 and 첨부파일 다운로드 (SPEC §6).
import { TalkgateError } from "../core/errors.ts";
import { asObject } from "../core/line-event.ts";
import { serialReceivedAt } from "../core/serial-number.ts";
import type { EventLog, MediaRecord, Retention, StoredMessage } from "./store.ts";

/** Where stored messages are read: the events, and how far retention deleted them. */
type Messages = EventLog & Pick<Retention, "purgedThrough">;

async function findMessage(store: Messages, senderKey: string, serialNumber: string): Promise<StoredMessage> {
  const message = await store.findMessage(senderKey, serialNumber);
  if (!message) {
    // A serial number carries its receive time: one no later than the newest event retention deleted was deleted.
    const receivedAt = serialReceivedAt(serialNumber);
    const purgedThrough = receivedAt === null ? null : await store.purgedThrough();
    if (receivedAt !== null && purgedThrough !== null && receivedAt <= purgedThrough)
      throw new TalkgateError(
        "-410",
        `message ${serialNumber} is gone: received ${new Date(receivedAt).toISOString()}, before the ` +
          "retention period (retention.eventsDays), so talkgate deleted it",
      );
    throw new TalkgateError("-508", `no message ${serialNumber} in channel ${senderKey}`);
  }
  if (message.unsent) throw new TalkgateError("-410", `message ${serialNumber} was unsent by the user`);
  if (message.erased)
    throw new TalkgateError(
      "-410",
      `message ${serialNumber} is gone: its user's data was erased at their request`,
    );
  return message;
}

/** The full text of a text message (long or not). */
export async function readText(store: Messages, senderKey: string, serialNumber: string): Promise<string> {
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
  store: Messages,
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
