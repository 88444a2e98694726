-- Chat re-sends after a reconnect: the client's own id for a message makes storing
-- it idempotent per (meeting, sender).
alter table meeting_messages add column client_message_id text
    constraint meeting_messages_client_message_id_check
    check (client_message_id ~ '^[A-Za-z0-9_-]{1,64}$');
create unique index meeting_messages_client_message_id_uniq
    on meeting_messages (meeting_id, sender_id, client_message_id)
    where client_message_id is not null;
