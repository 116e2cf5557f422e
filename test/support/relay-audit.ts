// Checks what a partner received against what LINE sent: lost events, order per conversation, serial number
// changes, duplicates that are not the same payload again. Used by the suites that kill things under load.
import type { PartnerPayload } from "../../src/core/partner-payload.ts";

/** An event LINE sent: its message id, conversation key (`user:<id>`, …) and LINE timestamp. */
export interface SentEvent {
  conversation: string;
  timestamp: number;
}

export interface RelayAudit {
  /** Acknowledged message ids the partner never received. */
  lost: string[];
  orderViolations: number;
  serialChanges: number;
  duplicates: number;
  duplicatesNotIdentical: number;
  /** Payloads whose message id was never sent, or whose source is not the one sent. */
  unknown: number;
  /** Message id → serial_number of its first delivery. */
  serialOf: Map<string, string>;
}

/** The conversation key of a payload's source. */
export function conversationOf(payload: PartnerPayload): string {
  const source = payload.source as { type: string; userId?: string; groupId?: string; roomId?: string };
  const id =
    source.type === "group" ? source.groupId : source.type === "room" ? source.roomId : source.userId;
  return `${source.type}:${id}`;
}

/** Audits `payloads` (in the order the partner accepted them) against `sent` (by message id). */
export function auditRelay(
  sent: ReadonlyMap<string, SentEvent>,
  acknowledged: Iterable<string>,
  payloads: readonly PartnerPayload[],
): RelayAudit {
  const first = new Map<string, string>();
  const serialOf = new Map<string, string>();
  const lastTimestamp = new Map<string, number>();
  const audit = {
    orderViolations: 0,
    serialChanges: 0,
    duplicates: 0,
    duplicatesNotIdentical: 0,
    unknown: 0,
  };
  for (const payload of payloads) {
    const id = payload.content.id as string;
    const event = sent.get(id);
    if (!event || conversationOf(payload) !== event.conversation) {
      audit.unknown++;
      continue;
    }
    const json = JSON.stringify(payload);
    const earlier = first.get(id);
    if (earlier !== undefined) {
      audit.duplicates++;
      if (earlier !== json) audit.duplicatesNotIdentical++;
      if (serialOf.get(id) !== payload.serial_number) audit.serialChanges++;
      continue;
    }
    first.set(id, json);
    serialOf.set(id, payload.serial_number);
    if (event.timestamp < (lastTimestamp.get(event.conversation) ?? 0)) audit.orderViolations++;
    lastTimestamp.set(event.conversation, event.timestamp);
  }
  const lost = [...acknowledged].filter((id) => !serialOf.has(id));
  return { ...audit, lost, serialOf };
}
