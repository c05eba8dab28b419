"""The shared harness of the real-process tests (``tests/system/``) and the benchmarks (``benchmarks/``).

One place for what both do to the processes around the service: port checks (one ``/proc/net`` reader),
starting and stopping processes (own session, SIGTERM then SIGKILL, readiness polling, stderr kept for the
error), Kamailio with a configuration and readiness by OPTIONS, SIPp runs (command line, exit status,
statistics files), the ``call-api`` process, and ``/proc`` readings (CPU seconds, RSS).

It is a top-level package of its own rather than a module under ``tests/`` or ``benchmarks/`` so that a
benchmark never imports a test module and a test never needs a benchmark to find its rig; neither is
shipped (``pyproject.toml`` packages only ``b2bua`` and ``rpc``), and nothing here is imported by them.
"""
