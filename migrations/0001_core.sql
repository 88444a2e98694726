-- Core schema: people, catalogue, mentoring slots, bookings and meetings.

create or replace function set_updated_at() returns trigger as $$
begin
    new.updated_at = now();
    return new;
end;
$$ language plpgsql;

create table colleges (
    id uuid primary key,
    name text not null,
    city text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index colleges_name_key on colleges (lower(name));
create trigger colleges_updated_at before update on colleges for each row execute function set_updated_at();

create table courses (
    id uuid primary key,
    slug text not null unique,
    title text not null,
    description text not null default '',
    is_published boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create trigger courses_updated_at before update on courses for each row execute function set_updated_at();

create table batches (
    id uuid primary key,
    name text not null,
    course_id uuid references courses (id) on delete set null,
    college_id uuid references colleges (id) on delete set null,
    starts_on date,
    ends_on date,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint batches_dates_check check (ends_on is null or starts_on is null or ends_on >= starts_on)
);
create unique index batches_name_key on batches (lower(name));
create trigger batches_updated_at before update on batches for each row execute function set_updated_at();

create table users (
    id uuid primary key,
    email text not null,
    password_hash text not null,
    name text not null,
    role text not null check (role in ('student', 'mentor', 'admin', 'sales', 'superadmin', 'recruiter')),
    college_id uuid references colleges (id) on delete set null,
    batch_id uuid references batches (id) on delete set null,
    email_verified boolean not null default false,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create index users_role_idx on users (role);
create trigger users_updated_at before update on users for each row execute function set_updated_at();

-- Refresh tokens are stored hashed; rotation revokes the previous one.
create table refresh_tokens (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    token_hash text not null unique,
    expires_at timestamptz not null,
    revoked_at timestamptz,
    created_at timestamptz not null default now()
);
create index refresh_tokens_user_idx on refresh_tokens (user_id);

-- One-time codes for email verification and password reset (hashed).
create table email_otps (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    purpose text not null check (purpose in ('verify_email', 'reset_password')),
    code_hash text not null,
    attempts integer not null default 0,
    expires_at timestamptz not null,
    consumed_at timestamptz,
    created_at timestamptz not null default now()
);
create index email_otps_user_purpose_idx on email_otps (user_id, purpose);

-- Outgoing mail; the email worker delivers rows and stamps sent_at.
create table email_outbox (
    id uuid primary key,
    to_email text not null,
    template text not null,
    payload jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    last_error text
);

create table mentor_slots (
    id uuid primary key,
    mentor_id uuid not null references users (id) on delete cascade,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    status text not null default 'open' check (status in ('open', 'booked', 'expired', 'cancelled')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint mentor_slots_range_check check (ends_at > starts_at)
);
create unique index mentor_slots_mentor_start_key on mentor_slots (mentor_id, starts_at);
create index mentor_slots_open_idx on mentor_slots (starts_at) where status = 'open';
create trigger mentor_slots_updated_at before update on mentor_slots for each row execute function set_updated_at();

create table bookings (
    id uuid primary key,
    slot_id uuid not null references mentor_slots (id) on delete cascade,
    student_id uuid not null references users (id) on delete cascade,
    status text not null default 'confirmed' check (status in ('confirmed', 'cancelled')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- The database itself makes double booking impossible.
create unique index bookings_one_confirmed_per_slot on bookings (slot_id) where status = 'confirmed';
create trigger bookings_updated_at before update on bookings for each row execute function set_updated_at();

create table meetings (
    id uuid primary key,
    booking_id uuid not null unique references bookings (id) on delete cascade,
    mentor_id uuid not null references users (id) on delete cascade,
    student_id uuid not null references users (id) on delete cascade,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    status text not null default 'scheduled' check (status in ('scheduled', 'cancelled', 'completed')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index meetings_mentor_idx on meetings (mentor_id);
create index meetings_student_idx on meetings (student_id);
create trigger meetings_updated_at before update on meetings for each row execute function set_updated_at();
