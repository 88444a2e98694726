-- Refresh token rotation with reuse detection: every login starts a family; each
-- refresh replaces the presented token with a new one of the same family. A token
-- presented again after it was replaced means it leaked, so the family is revoked.
alter table refresh_tokens add column family_id uuid;
update refresh_tokens set family_id = id where family_id is null;
alter table refresh_tokens alter column family_id set not null;
alter table refresh_tokens add column replaced_at timestamptz;
create index refresh_tokens_family_idx on refresh_tokens (family_id);
