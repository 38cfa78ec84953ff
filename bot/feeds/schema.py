"""The feeds' tables, as migrations: script N is version N; never edit one that shipped.

A *source* is one feed URL, fetched once however many channels subscribe; a
*subscription* ties a source to a channel with its filters. `feed_items` remembers which
items of a source were already seen, `feed_posts` when each item of a subscription was
queued, `feed_notices` and `feed_notice_groups` what the channels are told and when.
"""

MIGRATIONS = [
    """
    CREATE TABLE feed_sources (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL DEFAULT '',
        allow_private INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
        etag TEXT,
        last_modified TEXT,
        content_hash TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        disabled_reason TEXT,
        disabled_at REAL,
        last_fetch_at REAL,
        last_ok_at REAL,
        last_new_at REAL,
        next_check_at REAL NOT NULL
    );
    CREATE INDEX feed_sources_due ON feed_sources (state, next_check_at);
    CREATE TABLE feed_subscriptions (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES feed_sources (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        include TEXT NOT NULL DEFAULT '',
        exclude TEXT NOT NULL DEFAULT '',
        template TEXT NOT NULL DEFAULT '',
        backlog INTEGER NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        primed INTEGER NOT NULL DEFAULT 0,
        quiet INTEGER NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (source_id, channel)
    );
    CREATE TABLE feed_items (
        source_id INTEGER NOT NULL REFERENCES feed_sources (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        first_seen REAL NOT NULL,
        PRIMARY KEY (source_id, key)
    );
    CREATE TABLE feed_posts (
        subscription_id INTEGER NOT NULL REFERENCES feed_subscriptions (id) ON DELETE CASCADE,
        item_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        not_before REAL NOT NULL,
        PRIMARY KEY (subscription_id, item_key)
    );
    CREATE INDEX feed_posts_channel ON feed_posts (channel, not_before)
    """,
    # When the feed stopped listing an item (NULL while it lists it), for pruning.
    """
    ALTER TABLE feed_items ADD COLUMN gone_since REAL;
    CREATE INDEX feed_items_gone ON feed_items (source_id, gone_since)
        WHERE gone_since IS NOT NULL
    """,
    # The last time a subscription's filter could not decide items (too slow), for health.
    """
    ALTER TABLE feed_subscriptions ADD COLUMN filter_trouble TEXT;
    ALTER TABLE feed_subscriptions ADD COLUMN filter_trouble_at REAL
    """,
    # Notices (a feed switched off) wait in `feed_notices` until they are gathered, per
    # channel, into one post (a `feed_notice_groups` row, whose id keys the post in the
    # outbox): a notice is written with the switch-off itself, and belongs to one group.
    """
    CREATE TABLE feed_notice_groups (
        id INTEGER PRIMARY KEY,  -- never deleted: an id, and so an outbox key, is used once
        channel TEXT NOT NULL,
        created_at REAL NOT NULL,
        not_before REAL NOT NULL,
        queued INTEGER NOT NULL DEFAULT 0,
        withdrawn INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX feed_notice_groups_channel ON feed_notice_groups (channel, not_before);
    CREATE TABLE feed_notices (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        subscription_id INTEGER NOT NULL
            REFERENCES feed_subscriptions (id) ON DELETE CASCADE,
        source_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        group_id INTEGER REFERENCES feed_notice_groups (id)
    );
    CREATE INDEX feed_notices_waiting ON feed_notices (channel, id) WHERE group_id IS NULL;
    CREATE INDEX feed_notices_group ON feed_notices (group_id)
    """,
    # A subscription's own check interval (`check_every`, seconds; NULL: the configured one)
    # and the one role or user group its posts ping (`ping_role`, its id, '' for none;
    # `ping_name` to show it). A source keeps the TTL its last parse gave, so answers that
    # are not parsed (304, unchanged) honour it too.
    """
    ALTER TABLE feed_subscriptions ADD COLUMN check_every REAL;
    ALTER TABLE feed_subscriptions ADD COLUMN ping_role TEXT NOT NULL DEFAULT '';
    ALTER TABLE feed_subscriptions ADD COLUMN ping_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE feed_sources ADD COLUMN ttl REAL
    """,
]
