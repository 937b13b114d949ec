-- The three books: decisions received from dedupe, the postings they make,
-- per-account balances kept in the same transaction, and the writer's consumer
-- offsets (committed with the postings, so redelivery cannot double a posting).

CREATE TABLE decisions (
    decision_id      uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('credit', 'reverse', 'duplicate', 'not_credited')),
    claim_id         uuid NOT NULL,
    event_source     text NOT NULL,
    event_id         text NOT NULL,
    subject          text NOT NULL,
    behaviour_type   text NOT NULL,
    region           char(6) NOT NULL,
    amount_mg        bigint NOT NULL,
    winner_claim_id  uuid,
    reverses         uuid,
    reason           text,
    claim            jsonb NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_by_event ON decisions (event_source, event_id);
CREATE INDEX decisions_by_claim ON decisions (claim_id);

CREATE TABLE postings (
    seq                  bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    posting_id           uuid PRIMARY KEY,
    decision_id          uuid NOT NULL REFERENCES decisions (decision_id),
    claim_id             uuid NOT NULL,
    book                 text NOT NULL CHECK (book IN ('personal', 'enterprise', 'government')),
    account              text NOT NULL,
    amount_mg            bigint NOT NULL,
    behaviour_type       text NOT NULL,
    region               char(6) NOT NULL,
    partner              text NOT NULL,
    methodology_id       text,
    methodology_version  text,
    behaviour_time       timestamptz NOT NULL,
    posted_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (decision_id, book)
);
CREATE INDEX postings_by_account ON postings (book, account, seq);

CREATE TABLE balances (
    book        text NOT NULL,
    account     text NOT NULL,
    balance_mg  bigint NOT NULL,
    postings    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (book, account)
);

CREATE TABLE consumer_offsets (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Entries are append-only: a correction is a new, opposite entry.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
