"""The seam under a session: a Session uses nothing of its UA core but :class:`SessionHost`, which
:class:`UserAgent` implements; an :class:`Outgoing` handle names the request the application sent."""

from __future__ import annotations

import ast
from pathlib import Path

from b2bua.sip.message import Headers, Request
from b2bua.sip.session_host import Outgoing, SessionHost
from b2bua.sip.ua import UserAgent

SESSION = Path(__file__).resolve().parent.parent / "b2bua" / "sip" / "session.py"


def host_members() -> set[str]:
    return {name for name in vars(SessionHost) if not name.startswith("_")} | set(SessionHost.__annotations__)


def test_a_session_uses_only_the_host_interface() -> None:
    used: set[str] = set()
    for node in ast.walk(ast.parse(SESSION.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and \
                node.value.attr == "host" and isinstance(node.value.value, ast.Name) and node.value.value.id == "self":
            used.add(node.attr)
    assert used, "session.py reaches its UA as self.host"
    assert used <= host_members(), f"not in SessionHost: {sorted(used - host_members())}"


def test_the_user_agent_implements_every_member() -> None:
    missing = {name for name in host_members()
               if not hasattr(UserAgent, name) and name not in UserAgent.__dataclass_fields__}
    assert not missing


def test_outgoing_keeps_the_first_request_and_follows_retries() -> None:
    first = Request("INFO", "sip:bob@127.0.0.1", Headers.of(("CSeq", "2 INFO"), ("Call-ID", "c1")))
    retry = Request("INFO", "sip:bob@127.0.0.1", Headers.of(("CSeq", "3 INFO"), ("Call-ID", "c1")))
    handle = Outgoing(first)
    assert handle.first is first and handle.request is first and handle.method == "INFO"
    handle.request = retry
    assert handle.first is first and handle.request is retry
    assert repr(handle) == "<Outgoing INFO c1>"
