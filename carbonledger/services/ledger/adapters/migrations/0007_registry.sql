-- Issue 21: the carbon asset registry (DOMAIN.md §13, docs/registry.md).
-- btree_gist (PostgreSQL contrib, a trusted extension) lets one EXCLUDE constraint
-- say "same unit type, overlapping numbers": no serial in two issuances or blocks.
CREATE EXTENSION IF NOT EXISTS btree_gist;
-- History is append-only and hash-chained (registry_transactions); the issuances,
-- their contributors and adjustments, and the proceeds book are append-only too.
-- Only registry_blocks (who holds which units now) changes, and `carbonledger
-- verify` replays the history to check it.

CREATE TABLE registry_accounts (
    account_id  text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('holding', 'buyer')),
    region      char(6),
    opened_at   timestamptz NOT NULL,
    CHECK ((kind = 'holding') = (region IS NOT NULL))
);

-- One chain for the whole registry, numbered 1, 2, 3, ...; `details` holds what
-- the kind needs (price, venue, beneficiary, the issuance's figures).
CREATE TABLE registry_transactions (
    chain_index   bigint PRIMARY KEY CHECK (chain_index >= 1),
    tx_id         uuid NOT NULL UNIQUE,
    kind          text NOT NULL CHECK (kind IN ('open', 'issue', 'transfer', 'retire')),
    account       text NOT NULL,
    counterparty  text,
    units         bigint NOT NULL CHECK (units >= 0),
    moved         text NOT NULL,
    details       jsonb NOT NULL,
    occurred_at   timestamptz NOT NULL,
    prev_hash     char(64) NOT NULL,
    hash          char(64) NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_transactions_by_account ON registry_transactions (account, chain_index);
CREATE INDEX registry_transactions_by_counterparty
    ON registry_transactions (counterparty, chain_index);

-- Where the chain stands: one row, moved in the transaction that appends.
CREATE TABLE registry_head (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    chain_index  bigint NOT NULL,
    hash         char(64) NOT NULL
);
INSERT INTO registry_head (chain_index, hash) VALUES (0, repeat('0', 64));

-- An issuance of (region, methodology, period): the verification behind it and
-- its arithmetic. Sequence numbers are unique per unit type.
CREATE TABLE registry_issuances (
    issuance_id      uuid PRIMARY KEY,
    tx_id            uuid NOT NULL REFERENCES registry_transactions (tx_id),
    region           char(6) NOT NULL,
    methodology_id   text NOT NULL,
    period_from      date NOT NULL,
    period_to        date NOT NULL CHECK (period_to >= period_from),
    vintage          integer NOT NULL,
    unit_type        text NOT NULL,
    units            bigint NOT NULL CHECK (units >= 0),
    serial_first     bigint,
    serial_last      bigint,
    net_mg           bigint NOT NULL,
    carried_in_mg    bigint NOT NULL,
    adjusted_mg      bigint NOT NULL,
    carried_mg       bigint NOT NULL,
    verifier         text NOT NULL,
    verified_at      timestamptz NOT NULL,
    manifest_sha256  char(64) NOT NULL,
    issued_at        timestamptz NOT NULL,
    UNIQUE (region, methodology_id, period_from, period_to),
    CHECK ((units = 0 AND serial_first IS NULL AND serial_last IS NULL)
        OR (units > 0 AND serial_last - serial_first + 1 = units))
);
CREATE UNIQUE INDEX registry_issuances_serials ON registry_issuances (unit_type, serial_first);
ALTER TABLE registry_issuances ADD CONSTRAINT registry_issuances_no_serial_twice
    EXCLUDE USING gist (unit_type WITH =, int8range(serial_first, serial_last, '[]') WITH &&)
    WHERE (units > 0);
CREATE INDEX registry_issuances_series ON registry_issuances (region, methodology_id, issued_at);

-- Each later issuance's recomputation of an earlier vintage of its series.
CREATE TABLE registry_adjustments (
    issuance_id   uuid NOT NULL REFERENCES registry_issuances (issuance_id),
    vintage_id    uuid NOT NULL REFERENCES registry_issuances (issuance_id),
    current_mg    bigint NOT NULL,
    adjusted_mg   bigint NOT NULL,
    PRIMARY KEY (issuance_id, vintage_id)
);

-- The snapshot of who contributed to a vintage (personal book: people and units).
CREATE TABLE registry_contributions (
    issuance_id   uuid NOT NULL REFERENCES registry_issuances (issuance_id),
    account       text NOT NULL,
    subject_kind  text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    net_mg        bigint NOT NULL CHECK (net_mg > 0),
    PRIMARY KEY (issuance_id, account)
);

-- Who holds which units now: non-overlapping runs of one issuance each.
CREATE TABLE registry_blocks (
    unit_type     text NOT NULL,
    first_seq     bigint NOT NULL,
    last_seq      bigint NOT NULL,
    issuance_id   uuid NOT NULL REFERENCES registry_issuances (issuance_id),
    account       text NOT NULL REFERENCES registry_accounts (account_id),
    retired_by    uuid REFERENCES registry_transactions (tx_id),
    PRIMARY KEY (unit_type, first_seq),
    CHECK (first_seq >= 1 AND last_seq >= first_seq),
    -- A move deletes the blocks it cuts before it adds the pieces: checked per row.
    CONSTRAINT registry_blocks_no_serial_twice
        EXCLUDE USING gist (unit_type WITH =, int8range(first_seq, last_seq, '[]') WITH &&)
);
CREATE INDEX registry_blocks_by_account ON registry_blocks (account, unit_type, first_seq);

-- The proceeds book: money, in fen, never mixed with tonnes.
CREATE TABLE registry_proceeds (
    allocation_id  uuid PRIMARY KEY,
    tx_id          uuid NOT NULL REFERENCES registry_transactions (tx_id),
    issuance_id    uuid NOT NULL REFERENCES registry_issuances (issuance_id),
    account        text NOT NULL,
    subject_kind   text NOT NULL CHECK (subject_kind IN ('person', 'unit')),
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    currency       char(3) NOT NULL DEFAULT 'CNY',
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_proceeds_by_account ON registry_proceeds (account);
CREATE INDEX registry_proceeds_by_tx ON registry_proceeds (tx_id);

CREATE TRIGGER registry_accounts_append_only BEFORE UPDATE OR DELETE ON registry_accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER registry_transactions_append_only BEFORE UPDATE OR DELETE
    ON registry_transactions FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER registry_issuances_append_only BEFORE UPDATE OR DELETE ON registry_issuances
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER registry_adjustments_append_only BEFORE UPDATE OR DELETE
    ON registry_adjustments FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER registry_contributions_append_only BEFORE UPDATE OR DELETE
    ON registry_contributions FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER registry_proceeds_append_only BEFORE UPDATE OR DELETE ON registry_proceeds
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The outbox carries registry events too (registry.events), in the transaction
-- of the registry change; rows before this are postings. `posting_id` holds the
-- transaction's or the allocation's id for those.
ALTER TABLE outbox ADD COLUMN topic text NOT NULL DEFAULT 'ledger.postings';
