"""Sans-I/O SIP: bytes and ``now`` in; messages, events and deadlines out (RFC 3261).

Nothing in this package imports asyncio, socket, time, random or uvloop; a test walks the imports.
"""
