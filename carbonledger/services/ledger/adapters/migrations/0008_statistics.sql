-- Issue 22: government statistics, kept in the posting transaction
-- (services/ledger/domain/statistics.py, docs/ledger.md "Statistics").

-- Per region (each level of the behaviour region's lineage, and 000000), China
-- Standard Time day, category, behaviour type, partner and subject kind: the
-- amount and the net credited actions (a credit +1, its reversal -1). A period's
-- figures are a sum over its days' rows: bounded by days x types x partners.
CREATE TABLE region_statistics (
    region          char(6) NOT NULL,
    day             date NOT NULL,
    category        text NOT NULL,
    behaviour_type  text NOT NULL,
    partner         text NOT NULL,
    subject_kind    text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    amount_mg       bigint NOT NULL,
    actions         bigint NOT NULL,
    PRIMARY KEY (region, day, category, behaviour_type, partner, subject_kind)
);

-- Per region, period (day, month, quarter, year), its first day, dimension (the
-- total with value '', or one category, behaviour type or partner) and subject: the
-- subject's net credited actions there then. A from-to span that is no single
-- period counts distinct subjects over its day rows.
CREATE TABLE region_participants (
    region           char(6) NOT NULL,
    period           text NOT NULL CHECK (period IN ('day', 'month', 'quarter', 'year')),
    period_start     date NOT NULL,
    dimension        text NOT NULL
                     CHECK (dimension IN ('total', 'category', 'behaviour_type', 'partner')),
    dimension_value  text NOT NULL,
    subject          text NOT NULL,
    subject_kind     text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    actions          bigint NOT NULL,
    PRIMARY KEY (region, period, period_start, dimension, dimension_value, subject)
);

-- How many rows above are above zero, per subject kind: participants of a period,
-- exact, bumped by the writer's upsert as a row crosses zero (either way), so a
-- period is read in one row, never counted from its people.
CREATE TABLE region_participant_counts (
    region           char(6) NOT NULL,
    period           text NOT NULL,
    period_start     date NOT NULL,
    dimension        text NOT NULL,
    dimension_value  text NOT NULL,
    subject_kind     text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    -- (no CHECK >= 0: it would test the -1 proposed by an upsert, not the sum)
    participants     bigint NOT NULL,
    PRIMARY KEY (region, period, period_start, dimension, dimension_value, subject_kind)
);

-- Partners' own rejections: each dead letter naming a partner (ingest's refusals
-- of its records above all), for that partner to read through the API. Keyed by
-- the letter's id (a function of where the refused record was): a redelivered
-- letter is the same row. Append-only, as the topic it copies.
CREATE TABLE partner_rejections (
    dead_letter_id  uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    partner         text NOT NULL,
    stage           text NOT NULL,
    reason          text NOT NULL,
    message         text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    record_offset   bigint NOT NULL,
    original        bytea NOT NULL,
    received_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partner_rejections_by_partner ON partner_rejections (partner, seq);
CREATE TRIGGER partner_rejections_append_only BEFORE UPDATE OR DELETE ON partner_rejections
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
