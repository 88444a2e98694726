-- Realtime: meeting chat history and recording state.

-- Chat messages sent in a meeting room. `seq` orders messages and is the
-- pagination cursor (uuids are not time-ordered).
create table meeting_messages (
    id uuid primary key,
    seq bigint generated always as identity unique,
    meeting_id uuid not null references meetings (id) on delete cascade,
    sender_id uuid not null references users (id) on delete cascade,
    body text not null,
    created_at timestamptz not null default now(),
    constraint meeting_messages_body_check check (length(body) between 1 and 4000)
);
create index meeting_messages_meeting_seq_idx on meeting_messages (meeting_id, seq);

-- Recording sessions started and stopped by the meeting host.
create table meeting_recordings (
    id uuid primary key,
    meeting_id uuid not null references meetings (id) on delete cascade,
    started_by uuid not null references users (id) on delete cascade,
    started_at timestamptz not null default now(),
    stopped_by uuid references users (id) on delete set null,
    stopped_at timestamptz,
    constraint meeting_recordings_range_check check (stopped_at is null or stopped_at >= started_at)
);
-- At most one recording in progress per meeting, enforced by the database.
create unique index meeting_recordings_one_active on meeting_recordings (meeting_id) where stopped_at is null;
