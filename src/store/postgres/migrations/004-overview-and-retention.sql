-- The console's overview: each channel's webhooks and relays of the last minute. The index on every event's
-- (sender_key, received_at) also serves the deliveries' time filters, which had one of their own.
CREATE INDEX events_by_channel_time ON events (sender_key, received_at);
DROP INDEX events_delivered_by_time;
CREATE INDEX events_delivered_recently ON events (sender_key, updated_at) WHERE state = 'delivered';

-- Retention (SPEC §12): what is old enough is found without reading the tables whole.
CREATE INDEX media_by_time ON media (created_at) WHERE state <> 'gone';
CREATE INDEX sends_by_time ON sends (created_at);
CREATE INDEX serial_counters_by_day ON serial_counters (day);
-- When the newest event retention deleted was received: a message older than that and not found is gone.
CREATE TABLE retention_state (
  id             integer PRIMARY KEY CHECK (id = 1),
  purged_through bigint  NOT NULL
);

-- Erasure of a user (SPEC §12): their events' text and content deleted, the event kept for its order.
ALTER TABLE events ADD COLUMN erased_at bigint;

-- A conversation's timeline in the console: its events and the partner's sends to it, newest first.
CREATE INDEX events_by_conversation ON events (sender_key, conversation, id);
CREATE INDEX sends_by_conversation ON sends (sender_key, conversation, created_at);
