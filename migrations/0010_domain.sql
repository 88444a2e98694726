-- Domain rules the core schema leaves open.

-- A mentor's live slots (open or booked) never overlap; the database enforces it so
-- concurrent creates cannot both win. Cancelled and expired slots do not count.
create extension if not exists btree_gist;
alter table mentor_slots add constraint mentor_slots_no_overlap
    exclude using gist (mentor_id with =, tstzrange(starts_at, ends_at, '[)') with &&)
    where (status in ('open', 'booked'));

-- "My bookings" and the booking list of a slot.
create index bookings_student_idx on bookings (student_id);
create index bookings_slot_idx on bookings (slot_id);
