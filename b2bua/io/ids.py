"""The random identifiers the sans-I/O core asks for (RFC 3261 sections 8.1.1.4, 8.1.1.7, 19.3, 14.1)."""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid

from ..sip.headers import MAGIC_COOKIE


class RandomIds:
    """Branches, tags and Call-IDs from :mod:`secrets` (unguessable, as section 19.3 asks of tags);
    glare delays and Retry-After from :mod:`random`."""

    def __init__(self, host: str = "call-api") -> None:
        self._host = host
        self._random = random.Random()
        self._key = secrets.token_bytes(16)

    def branch(self) -> str:
        return MAGIC_COOKIE + secrets.token_hex(8)

    def tag(self) -> str:
        return secrets.token_hex(6)

    def call_id(self) -> str:
        return f"{secrets.token_hex(12)}@{self._host}"

    def cnonce(self) -> str:
        return secrets.token_hex(8)

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
