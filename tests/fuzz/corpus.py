"""Seed inputs for the fuzz targets: real messages (RFC 4475, the benchmark's INVITE, our flows' SDP) and
JSON-RPC frames from docs/API.md's examples."""

from __future__ import annotations

import json

from benchmarks.messages import INVITE, SDP

from .. import rfc4475

_FRAMES = [
    {"jsonrpc": "2.0", "id": 1, "method": "CallStart", "params": {"caller": "sip:a@x", "callee": "sip:b@x"}},
    {"jsonrpc": "2.0", "id": "h", "method": "CallHold", "params": {"callid": "c@x", "leg": "caller"}},
    {"jsonrpc": "2.0", "method": "CallEnd", "params": {"callid": "c@x", "cmd_id": "taken"}},
    {"jsonrpc": "2.0", "id": 3, "method": "CallBlindTransfer",
     "params": {"callid": "c@x", "leg": "callee", "destination": "sip:c@x"}},
    {"jsonrpc": "2.0", "id": 4, "method": "CallAttendedTransfer",
     "params": {"callidA": "c@x", "legA": "caller", "callidB": "d@x", "legB": "callee"}},
    {"jsonrpc": "2.0", "id": None, "method": "CallUnhold", "params": {"callid": "c@x", "leg": "callee"}},
]


def seeds(target: str) -> list[bytes]:
    """The seed corpus of ``target``."""
    sip = [t.data for t in rfc4475.load()] + [INVITE]
    if target == "parser":
        return sip
    if target == "framing":
        return [b"\x05" + INVITE + INVITE, b"\x00\r\n\r\n" + INVITE] + [b"\x07" + m for m in sip]
    if target == "sdp":
        return [SDP, SDP.replace(b"a=sendrecv", b"a=recvonly"), SDP.replace(b"\r\n", b"\n")]
    if target == "jsonrpc":
        return [json.dumps(f).encode() for f in _FRAMES] + [json.dumps(_FRAMES).encode(), b"[]", b"{"]
    raise KeyError(target)
