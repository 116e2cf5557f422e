// serial_number: talkgate's id of one relayed event, `<P>-<NNNN>-<HHHHHHHH>` (SPEC §3).

/** The counter scope of a serial number: per (sender_key, prefix), restarting each UTC day. */
export interface SerialScope {
  prefix: string;
  /** The UTC day of the receive time, `YYYY-MM-DD`. */
  day: string;
}

/** The prefix P: the event's own prefix (user, else group/room id), else the sender_key's first 12 characters. */
export function serialScope(eventPrefix: string | null, senderKey: string, receivedAt: number): SerialScope {
  return {
    // LINE's ids are letters and digits; anything else (hostile input) becomes "_", so that a serial
    // number is always a valid HTTP header value (it travels as webhook-id).
    prefix: (eventPrefix ?? senderKey.slice(0, 12)).replace(/[^A-Za-z0-9]/g, "_"),
    day: new Date(receivedAt).toISOString().slice(0, 10),
  };
}

/** Formats `<P>-<NNNN>-<HHHHHHHH>`: counter zero-padded to 4+ digits, receive time in Unix seconds as hex. */
export function formatSerialNumber(prefix: string, counter: number, receivedAt: number): string {
  const seconds = Math.floor(receivedAt / 1000)
    .toString(16)
    .toUpperCase()
    .padStart(8, "0");
  return `${prefix}-${String(counter).padStart(4, "0")}-${seconds}`;
}

/** The receive time (ms, to the second) a serial number carries, or null when it is not one of talkgate's. */
export function serialReceivedAt(serialNumber: string): number | null {
  const match = /^[A-Za-z0-9_]+-\d{4,}-([0-9A-F]{8,})$/.exec(serialNumber);
  return match?.[1] ? Number.parseInt(match[1], 16) * 1000 : null;
}
