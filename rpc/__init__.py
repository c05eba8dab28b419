"""The WebSocket JSON-RPC 2.0 front of call-api (:mod:`rpc.server`, the contract in docs/API.md) and its asyncio
client, with the command-line client on it (:mod:`rpc.client`, docs/client.md), over the sans-I/O envelopes
(:mod:`rpc.jsonrpc`), method schemas (:mod:`rpc.methods`) and error codes (:mod:`rpc.errors`)."""
