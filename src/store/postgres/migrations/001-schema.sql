-- talkgate's PostgreSQL schema. Times are Unix milliseconds (bigint); an event's delivery lives in the event's row
-- (one row written per relayed event, not two).

CREATE TABLE events (
  id             bigserial PRIMARY KEY,
  sender_key     text    NOT NULL,
  event_key      text    NOT NULL,
  serial_number  text    NOT NULL,
  type           text    NOT NULL,
  mode           text    NOT NULL,
  conversation   text    NOT NULL,
  user_id        text,
  message_id     text,
  line_timestamp bigint  NOT NULL,
  received_at    bigint  NOT NULL,
  body           text    NOT NULL,
  unsent_at      bigint,
  -- The delivery to the partner, for forwarded types; state NULL otherwise.
  -- state: pending | retrying | delivered | dead.
  partner_id      text,
  state           text,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at bigint,
  retry_from      bigint,
  updated_at      bigint,
  last_status     integer,
  last_error      text
);
CREATE UNIQUE INDEX events_by_key ON events (sender_key, event_key);
CREATE UNIQUE INDEX events_by_serial ON events (sender_key, serial_number);
CREATE INDEX events_by_message ON events (sender_key, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX events_waiting ON events (sender_key, conversation, line_timestamp, id)
  WHERE state IN ('pending', 'retrying');
CREATE INDEX events_dead ON events (id) WHERE state = 'dead';
CREATE INDEX events_delivered_by_time ON events (sender_key, received_at) WHERE state IS NOT NULL;

CREATE TABLE serial_counters (
  sender_key text    NOT NULL,
  prefix     text    NOT NULL,
  day        text    NOT NULL,
  last       integer NOT NULL,
  PRIMARY KEY (sender_key, prefix, day)
);

-- One serial queue per conversation: when its head is due, who holds its lease (any instance), and what sending
-- needs of it (the mode and reply token of its latest event).
CREATE TABLE conversations (
  sender_key          text   NOT NULL,
  conversation        text   NOT NULL,
  partner_id          text,
  due_at              bigint,
  lease_owner         text,
  lease_until         bigint,
  last_event_at       bigint,
  last_mode           text,
  reply_token         text,
  reply_token_at      bigint,
  reply_token_used_by text,
  PRIMARY KEY (sender_key, conversation)
);
CREATE INDEX conversations_due ON conversations (partner_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX conversations_held ON conversations (partner_id, lease_until) WHERE lease_owner IS NOT NULL;

-- Attachments to fetch from LINE. state: pending | stored | gone.
CREATE TABLE media (
  event_id        bigint  PRIMARY KEY REFERENCES events (id),
  sender_key      text    NOT NULL,
  message_id      text    NOT NULL,
  kind            text    NOT NULL,
  state           text    NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at bigint  NOT NULL,
  lease_owner     text,
  lease_until     bigint,
  created_at      bigint  NOT NULL,
  updated_at      bigint  NOT NULL,
  content_type    text,
  size            bigint,
  sha256          text,
  path            text,
  gone_reason     text,
  last_error      text
);
CREATE INDEX media_due ON media (next_attempt_at) WHERE state = 'pending';

-- Every send through the partner API. state: sending | sent | failed | unknown.
CREATE TABLE sends (
  sender_key            text    NOT NULL,
  serial_number         text    NOT NULL,
  partner_id            text    NOT NULL,
  conversation          text    NOT NULL,
  recipient             text    NOT NULL,
  messages              text    NOT NULL,
  notification_disabled boolean NOT NULL,
  request_hash          text    NOT NULL,
  state                 text    NOT NULL,
  attempts              integer NOT NULL DEFAULT 1,
  method                text,
  line_request_id       text,
  answer                text,
  error_code            text,
  attempt_method        text,
  attempt_token         text,
  attempt_token_at      bigint,
  created_at            bigint  NOT NULL,
  updated_at            bigint  NOT NULL,
  PRIMARY KEY (sender_key, serial_number)
);

CREATE TABLE user_directory (
  sender_key text   NOT NULL,
  user_id    text   NOT NULL,
  e164       text,
  agree_type integer,
  updated_at bigint NOT NULL,
  PRIMARY KEY (sender_key, user_id)
);

CREATE TABLE uploads (
  name       text   PRIMARY KEY,
  partner_id text   NOT NULL,
  size       bigint NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX uploads_by_partner ON uploads (partner_id, created_at);

-- Files (attachments, uploads) kept in the database, so that every instance can serve them: a name, and its
-- bytes in chunks of at most 256 KiB.
CREATE TABLE files (
  name       text   PRIMARY KEY,
  size       bigint NOT NULL,
  created_at bigint NOT NULL,
  blob_id    bigint NOT NULL
);
CREATE INDEX files_by_time ON files (created_at);
CREATE TABLE file_chunks (
  blob_id bigint  NOT NULL,
  seq     integer NOT NULL,
  data    bytea   NOT NULL,
  PRIMARY KEY (blob_id, seq)
);
CREATE SEQUENCE blob_ids;
