"""The carbon asset registry's rules, as values (DOMAIN.md §13): serial blocks and
their splitting, lowest-serials-first moves, issuance arithmetic and period rules,
the largest-remainder allocation of proceeds, and the registry's hash chain.

Nothing here reads or writes: `adapters/registry.py` locks, reads and copies, and
`carbonledger verify` replays the recorded transactions through the same rules."""
