-- One delivery attempt at a time per outbox row: an attempt claims the row until
-- claimed_until before it talks to SMTP, so a second copy of the job (a stalled job
-- re-run, a redriven row) waits instead of sending the same mail concurrently.
alter table email_outbox add column claimed_until timestamptz;
