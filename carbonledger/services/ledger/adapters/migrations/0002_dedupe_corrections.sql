-- Dedupe corrections (issue 5): a claim can now have several decisions over time
-- (credit, reverse, duplicate of another partner's claim, cap). Record their order
-- and the words and winner an auditor needs to follow them.
ALTER TABLE decisions
    ADD COLUMN sequence        integer NOT NULL DEFAULT 0,
    ADD COLUMN reason_detail   text,
    ADD COLUMN winner_source   text,
    ADD COLUMN winner_event_id text;

CREATE INDEX decisions_winner ON decisions (winner_source, winner_event_id)
    WHERE winner_source IS NOT NULL;

-- Which credits stand (not reversed): recompute and audits ask it per event.
CREATE INDEX decisions_reverses ON decisions (reverses) WHERE reverses IS NOT NULL;
