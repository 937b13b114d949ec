-- Issue 6: hash-chained postings with running balances, per-period aggregates
-- (with government roll-ups), and a transactional outbox for ledger.postings.

-- Chains are written with every posting from here on. Postings made before
-- chains existed cannot be chained without editing append-only rows: refuse,
-- rather than leave a ledger that verifies partly. (Local stacks: `carbonledger reset`.)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM postings) THEN
        RAISE EXCEPTION 'postings exist from before hash chains; replay them into a new ledger';
    END IF;
END $$;

ALTER TABLE postings
    ADD COLUMN chain_index bigint NOT NULL,
    ADD COLUMN balance_mg  bigint NOT NULL,
    ADD COLUMN prev_hash   char(64) NOT NULL,
    ADD COLUMN hash        char(64) NOT NULL;
CREATE UNIQUE INDEX postings_chain ON postings (book, account, chain_index);

ALTER TABLE balances ADD COLUMN head_hash char(64) NOT NULL DEFAULT repeat('0', 64);

-- Totals per book, account, period (China Standard Time day or month), behaviour
-- type and region, kept in the posting transaction so reads never scan postings.
-- Government rows exist for every level of the posting region's lineage
-- (district, city, province, national 000000).
CREATE TABLE period_totals (
    book           text NOT NULL,
    account        text NOT NULL,
    period         text NOT NULL CHECK (period IN ('day', 'month')),
    period_start   date NOT NULL,
    behaviour_type text NOT NULL,
    region         char(6) NOT NULL,
    amount_mg      bigint NOT NULL,
    postings       bigint NOT NULL,
    PRIMARY KEY (book, account, period, period_start, behaviour_type, region)
);

-- Postings waiting to be published on ledger.postings; the publisher deletes
-- what the broker acknowledged.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_id  uuid NOT NULL,
    key         text NOT NULL,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
