-- Channel access tokens talkgate issued (SPEC §11), the token sealed; renewed by the instance holding the
-- row's lease (lease_owner, lease_until), read by every instance.
CREATE TABLE channel_tokens (
  sender_key      text    PRIMARY KEY,
  credential_id   text,
  token           text,
  key_id          text,
  issued_at       bigint,
  expires_at      bigint,
  retired         text    NOT NULL DEFAULT '[]',
  last_renewal_at bigint,
  last_failure_at bigint,
  last_failure    text,
  failures        integer NOT NULL DEFAULT 0,
  lease_owner     text,
  lease_until     bigint,
  version         bigint  NOT NULL DEFAULT 0
);
