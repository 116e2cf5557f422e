-- The operator plane (SPEC §10). Partners and channels made through the admin API, as JSON (secrets in it
-- encrypted); config_version moves with every change of them or of credentials, and every instance polls it.
CREATE TABLE config_entries (
  kind       text   NOT NULL,
  id         text   NOT NULL,
  body       text   NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (kind, id)
);
CREATE TABLE config_version (
  id      integer PRIMARY KEY CHECK (id = 1),
  version bigint  NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

-- Partner API keys and operator API tokens: the SHA-256 of each, never the token.
CREATE TABLE credentials (
  id           text   PRIMARY KEY,
  kind         text   NOT NULL,
  owner        text   NOT NULL,
  name         text   NOT NULL,
  digest       text   NOT NULL UNIQUE,
  created_at   bigint NOT NULL,
  created_by   text   NOT NULL,
  revoked_at   bigint,
  last_used_at bigint
);

CREATE TABLE operator_sessions (
  digest      text   PRIMARY KEY,
  operator    text   NOT NULL,
  csrf_digest text   NOT NULL,
  created_at  bigint NOT NULL,
  expires_at  bigint NOT NULL
);

-- Who did what, when, to what, and how it ended; appended, never changed.
CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            bigint NOT NULL,
  actor_kind    text   NOT NULL,
  actor         text   NOT NULL,
  credential_id text,
  action        text   NOT NULL,
  target        text,
  outcome       text   NOT NULL,
  request_id    text
);
CREATE INDEX audit_by_time ON audit_log (at);

-- Operators look a customer's events up by their LINE user id.
CREATE INDEX events_by_user ON events (user_id, received_at) WHERE user_id IS NOT NULL;
