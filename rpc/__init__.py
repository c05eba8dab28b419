"""The WebSocket JSON-RPC 2.0 front of call-api and its command-line client."""
