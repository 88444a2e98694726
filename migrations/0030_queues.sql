-- Queues: KPI snapshots, resume analyses, bulk student imports, outbox relay bookkeeping.

-- The relay stamps enqueued_at when it hands a row to emailQueue (so replicas never
-- enqueue a row twice); the email worker stamps sent_at or failed_at + last_error.
alter table email_outbox add column enqueued_at timestamptz;
alter table email_outbox add column failed_at timestamptz;
alter table email_outbox add column attempts integer not null default 0;
create index email_outbox_pending_idx on email_outbox (created_at)
    where enqueued_at is null and sent_at is null and failed_at is null;

-- Dashboard KPIs computed every 15 minutes by the kpi worker; the API serves the latest.
create table kpi_snapshots (
    id uuid primary key,
    computed_at timestamptz not null default now(),
    data jsonb not null
);
create index kpi_snapshots_computed_at_idx on kpi_snapshots (computed_at desc);

create table resume_analyses (
    id uuid primary key,
    student_id uuid not null references users (id) on delete cascade,
    status text not null default 'queued' check (status in ('queued', 'processing', 'completed', 'failed')),
    resume_text text,
    resume_url text,
    result jsonb,
    error text,
    attempts integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz,
    constraint resume_analyses_input_check check (resume_text is not null or resume_url is not null)
);
create index resume_analyses_student_idx on resume_analyses (student_id);
create trigger resume_analyses_updated_at before update on resume_analyses for each row execute function set_updated_at();

create table batch_imports (
    id uuid primary key,
    batch_id uuid not null references batches (id) on delete cascade,
    requested_by uuid references users (id) on delete set null,
    status text not null default 'queued' check (status in ('queued', 'processing', 'completed', 'failed')),
    csv text not null,
    total_rows integer not null default 0,
    imported_rows integer not null default 0,
    failed_rows integer not null default 0,
    -- [{"line": 3, "email": "...", "error": "..."}]
    errors jsonb not null default '[]'::jsonb,
    error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finished_at timestamptz
);
create index batch_imports_batch_idx on batch_imports (batch_id);
create trigger batch_imports_updated_at before update on batch_imports for each row execute function set_updated_at();
