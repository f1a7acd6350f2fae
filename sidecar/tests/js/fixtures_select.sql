-- select helper: tables and functions for rest_select.test.mjs (embedding errors, computed
-- fields and relationships, spread embeddings, aggregates). Its own tables: nothing else reads them.
CREATE TABLE sel_people (
    id int PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL
);
CREATE TABLE sel_channels (
    id int PRIMARY KEY,
    name text NOT NULL,
    owner_id int REFERENCES sel_people (id)
);
-- Two keys to sel_people: embedding one in the other is ambiguous (PGRST201).
CREATE TABLE sel_messages (
    id int PRIMARY KEY,
    channel_id int NOT NULL REFERENCES sel_channels (id),
    sender_id int NOT NULL REFERENCES sel_people (id),
    reviewer_id int REFERENCES sel_people (id),
    body text NOT NULL,
    amount numeric NOT NULL
);
CREATE TABLE sel_events (
    id int NOT NULL,
    kind text NOT NULL,
    at date NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE sel_events_2025 PARTITION OF sel_events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sel_events_2026 PARTITION OF sel_events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW sel_message_view AS SELECT id, channel_id, sender_id, body, amount FROM sel_messages;

INSERT INTO sel_people VALUES (1, 'Ann', 'Lee'), (2, 'Bo', 'Chen'), (3, 'Cy', 'Park');
INSERT INTO sel_channels VALUES (1, 'general', 1), (2, 'random', 2), (3, 'quiet', NULL);
INSERT INTO sel_messages VALUES
    (1, 1, 1, 2, 'hello', 10.5),
    (2, 1, 2, NULL, 'hi', 5),
    (3, 2, 1, 3, 'yo', 7),
    (4, 1, 3, NULL, 'hey', 3);
INSERT INTO sel_events VALUES (1, 'launch', '2025-03-01'), (2, 'fix', '2026-02-01'), (3, 'launch', '2026-05-01');

-- Computed fields: one argument of the row type, a scalar result.
CREATE FUNCTION full_name(sel_people) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT $1.first_name || ' ' || $1.last_name $$;
CREATE FUNCTION year(sel_events) RETURNS int
    LANGUAGE sql IMMUTABLE AS $$ SELECT extract(year FROM $1.at)::int $$;

-- Computed relationships: to-many (SETOF), to-one (ROWS 1, and not SETOF).
CREATE FUNCTION get_messages(sel_channels) RETURNS SETOF sel_messages
    LANGUAGE sql STABLE AS $$ SELECT * FROM sel_messages WHERE channel_id = $1.id $$;
CREATE FUNCTION owner(sel_channels) RETURNS SETOF sel_people ROWS 1
    LANGUAGE sql STABLE AS $$ SELECT * FROM sel_people WHERE id = $1.owner_id $$;
CREATE FUNCTION last_message(sel_channels) RETURNS sel_messages
    LANGUAGE sql STABLE AS $$ SELECT * FROM sel_messages WHERE channel_id = $1.id ORDER BY id DESC LIMIT 1 $$;
-- Named as the table: overrides the two detected (ambiguous) sel_messages → sel_people ones.
CREATE FUNCTION sel_people(sel_messages) RETURNS SETOF sel_people ROWS 1
    LANGUAGE sql STABLE AS $$ SELECT * FROM sel_people WHERE id = $1.sender_id $$;

CREATE FUNCTION sel_all_messages() RETURNS SETOF sel_messages
    LANGUAGE sql STABLE AS $$ SELECT * FROM sel_messages $$;

GRANT SELECT ON sel_people, sel_channels, sel_messages, sel_events, sel_message_view
    TO anon, authenticated, service_role;

-- Aggregates as PostgREST's in-database configuration turns them on: a setting of the role the
-- sidecar logs in as, in this database (read with the schema cache).
DO $$ BEGIN
    EXECUTE format('ALTER ROLE authenticator IN DATABASE %I SET pgrst.db_aggregates_enabled = %L',
                   current_database(), 'true');
END $$;
