"""The only package that owns sockets, the event loop and the clock.

:mod:`~b2bua.io.shell` holds :class:`~b2bua.io.shell.SipShell`, which drives any sans-I/O
:class:`~b2bua.io.shell.SipCore` (the transaction layer, or the UA core above it) over UDP
(:mod:`~b2bua.io.udp`) and TCP (:mod:`~b2bua.io.tcp`, framed by :mod:`~b2bua.io.framing`), resolving
host names with :mod:`~b2bua.io.resolver`. :mod:`~b2bua.io.loop` picks uvloop or plain asyncio;
:mod:`~b2bua.io.ids` makes the random identifiers the core is given.
"""
