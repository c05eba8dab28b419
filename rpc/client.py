"""The ``call-api-client`` command (filled in by the API issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("call-api-client: not available yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
