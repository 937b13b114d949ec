"""The pseudonymous subject of an event: never a phone number or a credit code itself.

A person is the lowercase hex HMAC-SHA256 of their real-name-verified E.164 phone
number under the scheme's identity key; a unit (an organisation) that of its
18-character unified social credit code (统一社会信用代码) under the same key. The
same key everywhere is what lets the ledger see one person across partners.
"""

from __future__ import annotations

import hashlib
import hmac
import re

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# GB 32100-2015: 18 characters from the code's alphabet (digits and capitals without I, O,
# S, V, Z).
CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def _key(identity_key: bytes | str) -> bytes:
    return identity_key.encode() if isinstance(identity_key, str) else identity_key


def person_subject(identity_key: bytes | str, phone: str) -> str:
    """The subject of a person, from their E.164 number (`+8613800138000`)."""
    if not E164.fullmatch(phone):
        raise ValueError("a phone number in E.164 form is needed (+, country code, digits)")
    return hmac.new(_key(identity_key), phone.encode(), hashlib.sha256).hexdigest()


def unit_subject(identity_key: bytes | str, credit_code: str) -> str:
    """The subject of a unit, from its unified social credit code (upper case)."""
    if not CREDIT_CODE.fullmatch(credit_code):
        raise ValueError("a unified social credit code is 18 characters of 0-9 and A-Y")
    return hmac.new(_key(identity_key), credit_code.encode(), hashlib.sha256).hexdigest()
