-- Issue 24: participants kept as one row per subject and period instead of one per
-- (region, period, dimension, value, subject): a credit moved about 55 rows of
-- region_participants (409 MB of 550 MB in the bench); now at most four rows
-- (services/ledger/domain/statistics.py, docs/ledger.md "Government statistics").

-- The buckets a participant counts in: region (each level of the lineage, and
-- 000000), dimension (the total with value '', or one category, behaviour type or
-- partner) and subject kind, by a small id. A few thousand at most; never deleted,
-- so an id once committed names its bucket for good (the writer caches them).
CREATE TABLE participant_buckets (
    bucket           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region           char(6) NOT NULL,
    dimension        text NOT NULL
                     CHECK (dimension IN ('total', 'category', 'behaviour_type', 'partner')),
    dimension_value  text NOT NULL,
    subject_kind     text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    UNIQUE (region, dimension, dimension_value, subject_kind)
);

-- Per period (day, month, quarter, year), its first day and subject: the subject's
-- net credited actions in each bucket it acted in then, as parallel arrays (bucket
-- ids ascending, actions; no zero entries). A from-to span that is no single period
-- counts distinct subjects over its day rows, so the key leads by period and start.
CREATE TABLE participant_periods (
    period        text NOT NULL CHECK (period IN ('day', 'month', 'quarter', 'year')),
    period_start  date NOT NULL,
    subject       text NOT NULL,
    buckets       integer[] NOT NULL,
    actions       integer[] NOT NULL,
    CHECK (cardinality(buckets) = cardinality(actions)),
    PRIMARY KEY (period, period_start, subject)
);

-- Per period, period start and bucket: how many subjects hold the bucket above zero
-- then (participants, exact), bumped by the writer as a subject's entry crosses zero
-- either way. (No foreign key to the buckets: the writer adds a bucket before it
-- counts in it, and a key check would cost every bump.)
CREATE TABLE participant_counts (
    period        text NOT NULL,
    period_start  date NOT NULL,
    bucket        integer NOT NULL,
    -- (no CHECK >= 0: it would test the -1 proposed by an upsert, not the sum)
    participants  bigint NOT NULL,
    PRIMARY KEY (period, period_start, bucket)
);

-- The rows of 0008's tables, converted: their buckets, each subject's period row
-- (entries at zero left out), and the counts above zero.
INSERT INTO participant_buckets (region, dimension, dimension_value, subject_kind)
SELECT DISTINCT region, dimension, dimension_value, subject_kind FROM region_participants
ORDER BY 1, 2, 3, 4;

INSERT INTO participant_periods (period, period_start, subject, buckets, actions)
SELECT r.period, r.period_start, r.subject,
       array_agg(b.bucket ORDER BY b.bucket), array_agg(r.actions::integer ORDER BY b.bucket)
FROM region_participants r
JOIN participant_buckets b USING (region, dimension, dimension_value, subject_kind)
WHERE r.actions <> 0
GROUP BY 1, 2, 3;

INSERT INTO participant_counts (period, period_start, bucket, participants)
SELECT c.period, c.period_start, b.bucket, c.participants
FROM region_participant_counts c
JOIN participant_buckets b USING (region, dimension, dimension_value, subject_kind)
WHERE c.participants <> 0;

DROP TABLE region_participant_counts;
DROP TABLE region_participants;
