"""``python -m rpc.client``: the ``call-api-client`` command."""

import sys

from .cli import main

sys.exit(main())
