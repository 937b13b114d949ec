-- Issue 20: the consent history, family links and unit accounts.

-- Consent history (DOMAIN §12): every consent.granted / consent.withdrawn a
-- partner reported, one row per account event (its id derived from the event:
-- a resend or redelivery is the same row). given_at is the event's time, when
-- the user gave or withdrew consent; seq is the order the rows were recorded in.
CREATE TABLE consent_events (
    account_event_id  uuid PRIMARY KEY,
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    subject           text NOT NULL CHECK (subject ~ '^[0-9a-f]{64}$'),
    subject_kind      text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    partner           text NOT NULL,
    type              text NOT NULL CHECK (type IN ('granted', 'withdrawn')),
    scope             text NOT NULL,
    evidence_id       text NOT NULL,
    given_at          timestamptz NOT NULL,
    region            char(6) NOT NULL,
    event_source      text NOT NULL,
    event_id          text NOT NULL,
    received_at       timestamptz,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_events_by_subject ON consent_events (subject, given_at, seq);

-- Family links (1+N): each side's report of a link or an unlink. reported_by is
-- the event's subject (the head or the member); links in force are computed from
-- these rows (domain/family.py), never stored as state.
CREATE TABLE family_events (
    account_event_id  uuid PRIMARY KEY,
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    reported_by       text NOT NULL,
    head              text NOT NULL CHECK (head ~ '^[0-9a-f]{64}$'),
    member            text NOT NULL CHECK (member ~ '^[0-9a-f]{64}$'),
    partner           text NOT NULL,
    type              text NOT NULL CHECK (type IN ('linked', 'unlinked')),
    time              timestamptz NOT NULL,
    evidence_id       text,
    event_source      text NOT NULL,
    event_id          text NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (head <> member AND reported_by IN (head, member))
);
CREATE INDEX family_events_by_head ON family_events (head);
CREATE INDEX family_events_by_member ON family_events (member, time, seq);

CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER family_events_append_only BEFORE UPDATE OR DELETE ON family_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Unit accounts: a personal-book balance row says whose account it is, so the
-- totals split the personal book into people and units from the balances alone
-- (one row per account, read anyway for the book totals), never from postings.
-- Enterprise and government accounts keep the default. A constant default
-- rewrites no row; the unit accounts written since 0005 are marked once, from
-- their postings (a read of postings at upgrade, not on any later read).
ALTER TABLE balances ADD COLUMN subject_kind text NOT NULL DEFAULT 'person'
    CHECK (subject_kind IN ('person', 'unit'));
UPDATE balances b SET subject_kind = 'unit'
FROM (SELECT DISTINCT account FROM postings WHERE book = 'personal' AND subject_kind = 'unit') u
WHERE b.book = 'personal' AND b.account = u.account;
