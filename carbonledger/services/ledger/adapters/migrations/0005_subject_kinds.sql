-- Unit subjects (organisations, e.g. 江西绿宝's unit accounts): each posting records
-- whose behaviour it is for, so the books and the published postings tell units
-- from people. Postings written before are people's. Adding a column with a
-- constant default rewrites no row, so the append-only trigger is not involved.
ALTER TABLE postings
    ADD COLUMN subject_kind text NOT NULL DEFAULT 'person'
        CHECK (subject_kind IN ('person', 'unit'));
