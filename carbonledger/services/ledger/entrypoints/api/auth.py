"""Who may read each ledger route: typed dependencies over the policy in
contracts/roles.py.

A route declares `dependencies=[reads(Reading.PERSONAL, "subject")]`: the caller's
token must allow that reading of the path (or query) parameter's value, else 401 /
403 before anything is read. A route whose key is only known once read (a claim's
subject) takes `Caller` and asks `allowed` itself. Public routes declare
`PUBLIC`; `bearer.undeclared_routes` keeps any route from being neither.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations.
from typing import Any

from fastapi import Depends, Request

from carbonledger.contracts.roles import Principal, Reading, allows
from carbonledger.runtime.bearer import Caller, Forbidden, public
from carbonledger.services.ledger.entrypoints.api.deps import Regions

PUBLIC = Depends(public)


def reads(reading: Reading, key: str) -> Any:
    """A route dependency: the caller may read `reading` of the parameter `key`."""

    async def within_scope(request: Request, caller: Caller, regions: Regions) -> Principal:
        value = request.path_params.get(key) or request.query_params.get(key) or ""
        if not allows(caller, reading, str(value), regions):
            raise Forbidden()
        return caller

    within_scope.__name__ = f"reads_{reading.value}"
    return Depends(within_scope)


def require(caller: Principal, reading: Reading, key: str, regions: Any) -> None:
    """For a route that learns the key as it reads: 403 unless allowed."""
    if not allows(caller, reading, key, regions):
        raise Forbidden()
