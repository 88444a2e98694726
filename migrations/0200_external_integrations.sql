-- External integrations (integrations-2): Google sign-in identities, meetings'
-- calendar events, mentors' Drive connections, code runs, voice interview calls.

-- An external identity (Google's `sub`) linked to an account.
create table user_identities (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    provider text not null check (provider in ('google')),
    subject text not null,
    email text not null,
    picture text,
    created_at timestamptz not null default now(),
    last_login_at timestamptz not null default now(),
    constraint user_identities_subject_key unique (provider, subject)
);
create index user_identities_user_idx on user_identities (user_id);

-- The Google Calendar event following a meeting (created, moved, cancelled).
create table meeting_calendar_events (
    meeting_id uuid primary key references meetings (id) on delete cascade,
    event_id text not null,
    status text not null default 'pending' check (status in ('pending', 'synced', 'cancelled', 'failed')),
    meet_link text,
    html_link text,
    synced_starts_at timestamptz,
    synced_ends_at timestamptz,
    attempts integer not null default 0,
    last_error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create trigger meeting_calendar_events_updated_at before update on meeting_calendar_events
    for each row execute function set_updated_at();

-- A mentor's Google Drive: the refresh token only as AES-256-GCM ciphertext.
create table google_drive_connections (
    user_id uuid primary key references users (id) on delete cascade,
    refresh_token_enc text not null check (refresh_token_enc like 'v1:%'),
    google_email text,
    scope text,
    connected_at timestamptz not null default now()
);

create table code_runs (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    language_id integer not null,
    source text not null,
    stdin text not null default '',
    judge0_token text,
    status text not null check (status in ('processing', 'completed', 'failed')),
    verdict text,
    stdout text,
    stderr text,
    compile_output text,
    message text,
    time_seconds double precision,
    memory_kb integer,
    cpu_time_limit_seconds double precision not null,
    memory_limit_kb integer not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index code_runs_user_idx on code_runs (user_id, created_at desc);
create trigger code_runs_updated_at before update on code_runs for each row execute function set_updated_at();

create table voice_calls (
    id uuid primary key,
    student_id uuid not null references users (id) on delete cascade,
    requested_by uuid references users (id) on delete set null,
    to_number text not null,
    status text not null default 'scheduled' check (status in ('scheduled', 'initiated', 'completed', 'failed')),
    scheduled_for timestamptz,
    conversation_id text unique,
    call_sid text,
    summary text,
    call_successful text,
    duration_secs integer,
    transcript jsonb,
    result jsonb,
    failure_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz
);
create index voice_calls_student_idx on voice_calls (student_id, created_at desc);
create trigger voice_calls_updated_at before update on voice_calls for each row execute function set_updated_at();
