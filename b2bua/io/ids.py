"""The random identifiers the sans-I/O core asks for (RFC 3261 sections 8.1.1.4, 8.1.1.7, 19.3, 14.1)."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import uuid

from ..sip.headers import MAGIC_COOKIE

#: Random octets drawn from the kernel at once (rendered as hex), for 200-odd identifiers.
_POOL_OCTETS = 4096


class RandomIds:
    """Branches, tags and Call-IDs from the kernel's CSPRNG (:func:`os.urandom`, unguessable as section
    19.3 asks of tags and section 8.1.1.4 recommends for Call-IDs), drawn 4 KiB at a time: one system
    call per 200-odd identifiers instead of one each (a bridged call takes about ten; at 1,000 calls/s
    the per-identifier calls were 5 % of the service's CPU). Each octet is used once. Glare delays and
    Retry-After come from :mod:`random`."""

    def __init__(self, host: str = "call-api") -> None:
        self._host = host
        self._random = random.Random()
        self._key = secrets.token_bytes(16)
        self._pool = ""
        self._at = 0

    def _hex(self, octets: int) -> str:
        """``octets`` fresh random octets as ``2 * octets`` hex digits."""
        at, end = self._at, self._at + 2 * octets
        if end > len(self._pool):
            self._pool, at, end = os.urandom(_POOL_OCTETS).hex(), 0, 2 * octets
        self._at = end
        return self._pool[at:end]

    def branch(self) -> str:
        return MAGIC_COOKIE + self._hex(8)

    def tag(self) -> str:
        return self._hex(6)

    def call_id(self) -> str:
        return f"{self._hex(12)}@{self._host}"

    def cnonce(self) -> str:
        return self._hex(8)

    def glare_delay(self, owner: bool) -> float:
        """Section 14.1: 2.1 to 4 s in 10 ms units for the Call-ID's owner, 0 to 2 s otherwise."""
        return self._random.randint(210, 400) / 100 if owner else self._random.randint(0, 200) / 100

    def retry_after(self) -> int:
        return self._random.randint(0, 10)

    def stable_tag(self, seed: str) -> str:
        """A keyed hash of ``seed``: the same tag for a retransmission, unguessable for anyone else."""
        return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), key=self._key, digest_size=6).hexdigest()

    def cmd_id(self) -> str:
        """A command id for the API (a UUID4, as the seed's examples show)."""
        return str(uuid.uuid4())
