"""The WebSocket JSON-RPC 2.0 front of call-api (:mod:`rpc.server`, the contract in docs/API.md) and its
command-line client (:mod:`rpc.client`), over the sans-I/O envelopes (:mod:`rpc.jsonrpc`), method schemas
(:mod:`rpc.methods`) and error codes (:mod:`rpc.errors`)."""
