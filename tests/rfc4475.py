"""The RFC 4475 torture messages and their expected verdicts (shared by the parse and UDP tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "rfc4475"


@dataclass(frozen=True)
class Torture:
    name: str
    section: str
    kind: str  # "request" or "response"
    expect: str  # accept, drop, either, a status, or "A|B"
    what: str

    @property
    def data(self) -> bytes:
        return (DATA / self.name).read_bytes()

    @property
    def statuses(self) -> set[int]:
        return {int(x) for x in self.expect.split("|")} if self.expect[0].isdigit() else set()


def load() -> list[Torture]:
    out = []
    for line in (DATA / "EXPECTED.tsv").read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("file\t"):
            continue
        name, section, kind, expect, what = line.split("\t")
        out.append(Torture(name, section, kind, expect, what))
    return out


TORTURES = load()
