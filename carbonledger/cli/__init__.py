"""The `carbonledger` command."""
