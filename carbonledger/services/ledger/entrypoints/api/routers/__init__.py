"""The ledger API's routes, one router per area."""
