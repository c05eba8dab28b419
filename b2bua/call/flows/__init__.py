"""One module per command: each flow is a small state machine on a call, fed responses and ``now``."""
