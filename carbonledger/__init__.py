"""Carbon inclusion ledger: shared contracts, command line and local stack control."""

__version__ = "0.1.0"
