"""`python -m carbonledger.cli.main`, the same as the `carbonledger` console script."""

from __future__ import annotations

import sys

from carbonledger.cli.app import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
