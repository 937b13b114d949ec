-- Employer accounts (企业员工碳账户, docs/domain.md): a person linked to an employer.
-- The employer's view sums the person's personal postings from the moment of
-- linking; it is a view of the personal book, never added to the enterprise book.
CREATE TABLE employer_links (
    subject     text PRIMARY KEY,
    employer    text NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX employer_links_by_employer ON employer_links (employer);
