// The SQLite schema, as numbered migrations applied in order at open.

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    sender_key     TEXT    NOT NULL,
    event_key      TEXT    NOT NULL,
    serial_number  TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    mode           TEXT    NOT NULL,
    conversation   TEXT    NOT NULL,
    user_id        TEXT,
    message_id     TEXT,
    line_timestamp INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    body           TEXT    NOT NULL
  );
  CREATE UNIQUE INDEX events_by_key ON events (sender_key, event_key);
  CREATE UNIQUE INDEX events_by_serial ON events (sender_key, serial_number);
  CREATE INDEX events_by_message ON events (sender_key, message_id) WHERE message_id IS NOT NULL;

  CREATE TABLE serial_counters (
    sender_key TEXT    NOT NULL,
    prefix     TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    last       INTEGER NOT NULL,
    PRIMARY KEY (sender_key, prefix, day)
  ) WITHOUT ROWID;

  -- The outbox: one row per event relayed to a partner. state: pending | retrying | delivered | dead.
  CREATE TABLE deliveries (
    event_id        INTEGER PRIMARY KEY REFERENCES events (id),
    sender_key      TEXT    NOT NULL,
    conversation    TEXT    NOT NULL,
    line_timestamp  INTEGER NOT NULL,
    partner_id      TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT
  );
  CREATE INDEX deliveries_waiting ON deliveries (sender_key, conversation, line_timestamp, event_id)
    WHERE state IN ('pending', 'retrying');

  -- One serial queue per conversation. due_at: look at its head no later than this (NULL: nothing waits).
  CREATE TABLE conversations (
    sender_key   TEXT NOT NULL,
    conversation TEXT NOT NULL,
    due_at       INTEGER,
    lease_owner  TEXT,
    lease_until  INTEGER,
    PRIMARY KEY (sender_key, conversation)
  ) WITHOUT ROWID;
  CREATE INDEX conversations_due ON conversations (due_at) WHERE due_at IS NOT NULL;

  -- The user directory (POST /line/user): e164 and agree_type carried in payloads.
  CREATE TABLE user_directory (
    sender_key TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    e164       TEXT,
    agree_type INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sender_key, user_id)
  ) WITHOUT ROWID;
  `,
  `
  -- Attachments (image, video, audio, file content on LINE), fetched in the background.
  -- state: pending (being fetched) | stored (on disk at path) | gone (gone_reason says why).
  CREATE TABLE media (
    event_id        INTEGER PRIMARY KEY REFERENCES events (id),
    sender_key      TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    content_type    TEXT,
    size            INTEGER,
    sha256          TEXT,
    path            TEXT,
    gone_reason     TEXT,
    last_error      TEXT
  );
  CREATE INDEX media_due ON media (next_attempt_at) WHERE state = 'pending';

  -- Set when the user unsent the message: its text and content are deleted.
  ALTER TABLE events ADD COLUMN unsent_at INTEGER;
  `,
  `
  -- What sending needs of a conversation: the mode of its latest event (by LINE timestamp) and its
  -- latest reply token, with the send that has claimed it.
  ALTER TABLE conversations ADD COLUMN last_event_at INTEGER;
  ALTER TABLE conversations ADD COLUMN last_mode TEXT;
  ALTER TABLE conversations ADD COLUMN reply_token TEXT;
  ALTER TABLE conversations ADD COLUMN reply_token_at INTEGER;
  ALTER TABLE conversations ADD COLUMN reply_token_used_by TEXT;

  -- Every send through the partner API (POST /line/message/send), for idempotency and audit.
  -- state: sending | sent | failed. answer: the JSON answered (and answered again to repeats).
  CREATE TABLE sends (
    sender_key            TEXT    NOT NULL,
    serial_number         TEXT    NOT NULL,
    partner_id            TEXT    NOT NULL,
    conversation          TEXT    NOT NULL,
    recipient             TEXT    NOT NULL,
    messages              TEXT    NOT NULL,
    notification_disabled INTEGER NOT NULL,
    request_hash          TEXT    NOT NULL,
    state                 TEXT    NOT NULL,
    attempts              INTEGER NOT NULL DEFAULT 1,
    method                TEXT,
    line_request_id       TEXT,
    answer                TEXT,
    error_code            TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (sender_key, serial_number)
  ) WITHOUT ROWID;
  `,
  `
  -- A reply of this send went to LINE and no definite answer came back (timeout, 5xx, crash): if LINE
  -- later calls its token invalid, the reply was delivered.
  ALTER TABLE sends ADD COLUMN reply_unanswered INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- Dead deliveries are counted for /metrics and listed for replay.
  CREATE INDEX deliveries_dead ON deliveries (event_id) WHERE state = 'dead';
  `,
  `
  -- An attempt of a send that is under way or was cut off: 'reply' (with its token and when the token's
  -- event was received) or 'push'. Written before the call to LINE; cleared once LINE's answer is known.
  ALTER TABLE sends ADD COLUMN attempt_method TEXT;
  ALTER TABLE sends ADD COLUMN attempt_token TEXT;
  ALTER TABLE sends ADD COLUMN attempt_token_at INTEGER;
  ALTER TABLE sends DROP COLUMN reply_unanswered;
  `,
  `
  -- When a conversation is due and who holds it are kept in memory by the process that owns the file.
  DROP INDEX conversations_due;
  ALTER TABLE conversations DROP COLUMN due_at;
  ALTER TABLE conversations DROP COLUMN lease_owner;
  ALTER TABLE conversations DROP COLUMN lease_until;
  `,
  `
  -- Files partners uploaded (POST /line/media), for their quota; forgotten when their files are pruned.
  CREATE TABLE uploads (
    name       TEXT    PRIMARY KEY,
    partner_id TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX uploads_by_partner ON uploads (partner_id, created_at);
  `,
  `
  -- The operator plane (SPEC §10). Partners and channels made through the admin API, as JSON (secrets in it
  -- encrypted); config_version moves with every change of them or of credentials, and every instance polls it.
  CREATE TABLE config_entries (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
  ) WITHOUT ROWID;
  CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
  );
  INSERT INTO config_version (id, version) VALUES (1, 0);

  -- Partner API keys and operator API tokens: the SHA-256 of each, never the token.
  CREATE TABLE credentials (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    digest       TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
  ) WITHOUT ROWID;

  CREATE TABLE operator_sessions (
    digest      TEXT    PRIMARY KEY,
    operator    TEXT    NOT NULL,
    csrf_digest TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- Who did what, when, to what, and how it ended; appended, never changed.
  CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    actor_kind    TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    credential_id TEXT,
    action        TEXT    NOT NULL,
    target        TEXT,
    outcome       TEXT    NOT NULL,
    request_id    TEXT
  );
  CREATE INDEX audit_by_time ON audit_log (at);

  -- Operators look a customer's events up by their LINE user id.
  CREATE INDEX events_by_user ON events (user_id, received_at) WHERE user_id IS NOT NULL;
  `,
  `
  -- Channel access tokens talkgate issued (SPEC §11), the token sealed; renewed under a lease.
  CREATE TABLE channel_tokens (
    sender_key      TEXT    PRIMARY KEY,
    credential_id   TEXT,
    token           TEXT,
    key_id          TEXT,
    issued_at       INTEGER,
    expires_at      INTEGER,
    retired         TEXT    NOT NULL DEFAULT '[]',
    last_renewal_at INTEGER,
    last_failure_at INTEGER,
    last_failure    TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    version         INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  `,
  `
  -- The console's overview: each channel's webhooks and relays of the last minute.
  CREATE INDEX events_by_channel_time ON events (sender_key, received_at);
  CREATE INDEX deliveries_delivered_by_time ON deliveries (sender_key, updated_at) WHERE state = 'delivered';
  `,
  `
  -- Retention (SPEC §12): what is old enough is found without reading the tables whole.
  CREATE INDEX media_by_time ON media (created_at) WHERE state <> 'gone';
  CREATE INDEX sends_by_time ON sends (created_at);
  CREATE INDEX serial_counters_by_day ON serial_counters (day);
  -- When the newest event retention deleted was received: a message older than that and not found is gone.
  CREATE TABLE retention_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through INTEGER NOT NULL
  );

  -- Erasure of a user (SPEC §12): their events' text and content deleted, the event kept for its order.
  ALTER TABLE events ADD COLUMN erased_at INTEGER;

  -- A conversation's timeline in the console: its events and the partner's sends to it, newest first.
  CREATE INDEX events_by_conversation ON events (sender_key, conversation, id);
  CREATE INDEX sends_by_conversation ON sends (sender_key, conversation, created_at);
  `,
];
