"""call-api: a SIP back-to-back user agent driven by a WebSocket JSON-RPC 2.0 front."""

__version__ = "0.1.0"
