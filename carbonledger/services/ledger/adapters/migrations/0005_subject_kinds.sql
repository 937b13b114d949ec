-- Unit subjects (organisations, e.g. 江西绿宝's unit accounts): each posting records
-- whose behaviour it is for, so the books and the published postings tell units
-- from people. Postings written before are people's. Adding a column with a
-- constant default rewrites no row, so the append-only trigger is not involved.
-- The check is NOT VALID: it holds for every new row, and every existing row has
-- the default 'person', so validating would only scan the table under the
-- migration's exclusive lock to learn nothing.
ALTER TABLE postings ADD COLUMN subject_kind text NOT NULL DEFAULT 'person';
ALTER TABLE postings ADD CONSTRAINT postings_subject_kind_known
    CHECK (subject_kind IN ('person', 'unit')) NOT VALID;
