"""What the ledger API refuses before it reads anything: parameters with control
characters, and how it answers when the books cannot be read.

A control character (NUL, a line break, DEL, ...) is never part of a subject,
partner, region or event id the ledger accepted, and PostgreSQL refuses a NUL in a
text parameter outright (a 500 before this check): such a request is the client's
mistake, answered 422 with the parameter's name.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from carbonledger.contracts.bounds import forbidden_character
from carbonledger.runtime.bearer import PROBLEM_TYPE, problem
from carbonledger.services.ledger.entrypoints.api.deps import BooksUnavailable


async def refuse_control_characters(request: Request) -> None:
    """422 naming the first path or query parameter (as decoded) with a control character."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        found = forbidden_character(str(value))
        if found is not None:
            raise HTTPException(
                422, f"parameter {name!r} contains the control character U+{ord(found):04X}"
            )


async def books_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After: the client may try again; nothing is wrong with its request."""
    assert isinstance(exc, BooksUnavailable)
    return JSONResponse(
        problem(503, str(exc), request),
        status_code=503,
        headers={"Retry-After": str(exc.retry_after)},
        media_type=PROBLEM_TYPE,
    )
