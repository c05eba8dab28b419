"""The only package that owns sockets, the event loop and the clock."""
