"""The standing chaos and fuzz suite: hostile partner input over Kafka and HTTP, poison
written to the internal topics, and stage and infrastructure faults under load
(docs/operations.md, "Chaos and fuzz suite"; `carbonledger chaos`).

hostile.py and poison.py are the tables (data: what is sent and what must happen),
verdict.py judges what was observed against them (pure), attack.py sends a table to a
running stack and observes, faults.py runs the fault runs.
"""
