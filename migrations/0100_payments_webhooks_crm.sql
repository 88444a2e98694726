-- Payments (Razorpay), the inbound webhook inbox, CRM calling, WhatsApp, eSign and
-- confirmed uploads.

-- Catalogue prices, in integer paise; null means "not for sale". Orders take the
-- amount from here, never from the client.
alter table courses add column price_paise bigint constraint courses_price_check check (price_paise > 0);
alter table courses add column currency text not null default 'INR' constraint courses_currency_check check (currency ~ '^[A-Z]{3}$');
alter table batches add column price_paise bigint constraint batches_price_check check (price_paise > 0);
alter table batches add column currency text not null default 'INR' constraint batches_currency_check check (currency ~ '^[A-Z]{3}$');

-- Phone numbers for calls, SMS and WhatsApp; the recruiter consent mr-hire reads under.
alter table users add column phone text constraint users_phone_check check (phone ~ '^\+[1-9][0-9]{7,14}$');
alter table users add column recruiter_consent boolean not null default false;
alter table users add column recruiter_consent_at timestamptz;

-- Every verified inbound webhook, once per (provider, provider event id): a redelivery
-- hits the unique key and does nothing. A worker applies the row and stamps
-- processed_at in the same transaction, so it takes effect exactly once.
create table webhook_events (
    id uuid primary key,
    provider text not null check (provider in ('razorpay', 'whatsapp', 'exotel', 'leegality')),
    event_id text not null check (length(event_id) between 1 and 300),
    event_type text not null,
    payload jsonb not null,
    received_at timestamptz not null default now(),
    enqueued_at timestamptz,
    processed_at timestamptz,
    attempts integer not null default 0,
    last_error text,
    constraint webhook_events_provider_event_key unique (provider, event_id)
);
create index webhook_events_pending_idx on webhook_events (received_at) where processed_at is null;

create table payments (
    id uuid primary key,
    user_id uuid not null references users (id) on delete restrict,
    course_id uuid references courses (id) on delete restrict,
    batch_id uuid references batches (id) on delete restrict,
    amount_paise bigint not null check (amount_paise > 0),
    currency text not null check (currency ~ '^[A-Z]{3}$'),
    status text not null default 'created'
        check (status in ('created', 'authorized', 'captured', 'failed', 'refunded')),
    razorpay_order_id text not null unique,
    razorpay_payment_id text unique,
    -- The checkout handler's signature was checked (POST /api/payments/verify).
    verified_at timestamptz,
    authorized_at timestamptz,
    captured_at timestamptz,
    failed_at timestamptz,
    failure_reason text,
    refund_requested_at timestamptz,
    razorpay_refund_id text unique,
    refunded_paise bigint not null default 0 check (refunded_paise >= 0),
    refunded_at timestamptz,
    invoice_number text unique,
    invoice_key text,
    invoice_emailed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint payments_one_item check ((course_id is null) <> (batch_id is null))
);
create index payments_user_idx on payments (user_id, created_at desc);
create index payments_status_idx on payments (status, created_at desc);
create trigger payments_updated_at before update on payments for each row execute function set_updated_at();
create sequence invoice_number_seq;

-- A captured payment enrolls its student once: one enrollment per payment and one per
-- (student, course) or (student, batch).
create table enrollments (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    course_id uuid references courses (id) on delete cascade,
    batch_id uuid references batches (id) on delete cascade,
    payment_id uuid references payments (id) on delete set null,
    created_at timestamptz not null default now(),
    constraint enrollments_one_item check ((course_id is null) <> (batch_id is null))
);
create unique index enrollments_payment_key on enrollments (payment_id) where payment_id is not null;
create unique index enrollments_user_course_key on enrollments (user_id, course_id) where course_id is not null;
create unique index enrollments_user_batch_key on enrollments (user_id, batch_id) where batch_id is not null;

-- CRM for the sales team.
create table leads (
    id uuid primary key,
    name text not null check (length(name) between 1 and 200),
    phone text not null check (phone ~ '^\+[1-9][0-9]{7,14}$'),
    email text,
    source text,
    status text not null default 'new'
        check (status in ('new', 'contacted', 'qualified', 'converted', 'lost')),
    assigned_to uuid references users (id) on delete set null,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index leads_assigned_idx on leads (assigned_to, created_at desc);
create trigger leads_updated_at before update on leads for each row execute function set_updated_at();

create table lead_notes (
    id uuid primary key,
    lead_id uuid not null references leads (id) on delete cascade,
    author_id uuid references users (id) on delete set null,
    body text not null check (length(body) between 1 and 4000),
    created_at timestamptz not null default now()
);
create index lead_notes_lead_idx on lead_notes (lead_id, created_at);

create table call_logs (
    id uuid primary key,
    lead_id uuid not null references leads (id) on delete cascade,
    agent_id uuid references users (id) on delete set null,
    -- 'exotel' for a bridged call, 'tel' for a tel: link handed to the agent's phone.
    channel text not null check (channel in ('exotel', 'tel')),
    call_sid text unique,
    status text not null,
    recording_url text,
    duration_seconds integer,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index call_logs_lead_idx on call_logs (lead_id, created_at desc);
create trigger call_logs_updated_at before update on call_logs for each row execute function set_updated_at();

create table sms_logs (
    id uuid primary key,
    lead_id uuid not null references leads (id) on delete cascade,
    sender_id uuid references users (id) on delete set null,
    sid text unique,
    status text not null,
    body text not null,
    created_at timestamptz not null default now()
);

-- WhatsApp Cloud API: outbound template sends and inbound messages, with delivery status.
create table whatsapp_messages (
    id uuid primary key,
    direction text not null check (direction in ('outbound', 'inbound')),
    wamid text unique,
    phone text not null,
    template text,
    body text,
    status text not null,
    error text,
    user_id uuid references users (id) on delete set null,
    -- Outbound rows are sent by the sendWhatsApp job; the relay queues rows whose job
    -- was never added.
    enqueued_at timestamptz,
    attempts integer not null default 0,
    status_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index whatsapp_messages_queued_idx on whatsapp_messages (created_at) where status = 'queued';
create trigger whatsapp_messages_updated_at before update on whatsapp_messages for each row execute function set_updated_at();

-- Leegality eSign requests for the PAP agreement.
create table esign_requests (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    document_id text unique,
    status text not null default 'requested'
        check (status in ('requested', 'sent', 'completed', 'rejected', 'failed')),
    sign_url text,
    signed_key text,
    last_event text,
    error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz
);
create index esign_requests_user_idx on esign_requests (user_id, created_at desc);
create trigger esign_requests_updated_at before update on esign_requests for each row execute function set_updated_at();

-- Presigned uploads: a row per issued URL, confirmed once the object is really in its
-- bucket with the announced size and type; unconfirmed ones expire and are deleted.
create table uploads (
    id uuid primary key,
    owner_id uuid not null references users (id) on delete cascade,
    purpose text not null,
    bucket text not null,
    key text not null unique,
    content_type text not null,
    size_bytes bigint not null check (size_bytes > 0),
    status text not null default 'pending' check (status in ('pending', 'confirmed')),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    confirmed_at timestamptz
);
create index uploads_owner_idx on uploads (owner_id, created_at desc);
create index uploads_pending_expiry_idx on uploads (expires_at) where status = 'pending';
