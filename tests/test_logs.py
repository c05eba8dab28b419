"""b2bua/logs.py: one record is one line of bounded length, whatever the network sent (issue 17, defect 4)."""

from __future__ import annotations

import io
import logging

import pytest

from b2bua.logs import MAX_ARG, MAX_MESSAGE, SafeFormatter, safe_text


def emit(msg: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("call_api.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception(msg, *args)
        else:
            logger.warning(msg, *args)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_a_call_id_with_line_breaks_cannot_forge_a_line() -> None:
    out = emit("call %s not found", "x\r\nINFO call_api: forged")
    assert out == "WARNING call_api.test_logs: call x\\r\\nINFO call_api: forged not found\n"


def test_a_huge_argument_is_cut_and_says_how_much() -> None:
    out = emit("call %s not found (%s)", "c" * 60_000, "again " * 10_000)
    assert out.count("\n") == 1 and len(out) < 2 * MAX_ARG + 200
    assert f"...[{60_000 - MAX_ARG} more]" in out


def test_numbers_keep_their_formats_and_mappings_work() -> None:
    assert emit("%d calls, %.1f ms", 3, 2.25) == "WARNING call_api.test_logs: 3 calls, 2.2 ms\n"
    assert emit("%(callid)s", {"callid": "a\nb"}) == "WARNING call_api.test_logs: a\\nb\n"


def test_text_in_the_message_itself_is_escaped_and_cut() -> None:
    out = emit("from the network: " + "\x1b[31m" + "z" * 10_000)
    assert "\x1b" not in out and "\\x1b[31m" in out and out.count("\n") == 1
    assert len(out) < MAX_MESSAGE + 100


def test_bytes_and_objects_are_written_bounded() -> None:
    out = emit("got %r and %s", b"\x00" * 5000, ValueError("bad\nvalue"))
    assert out.count("\n") == 1 and "bad\\nvalue" in out


def test_a_traceback_keeps_its_lines() -> None:
    out = emit("failed on %s", "x\ny", exc=True)
    first, *rest = out.splitlines()
    assert first == "ERROR call_api.test_logs: failed on x\\ny" and rest[0].startswith("Traceback")


def test_the_record_is_left_as_logged_for_other_handlers() -> None:
    record = logging.LogRecord("call_api", logging.INFO, __file__, 1, "%s", ("a\nb",), None)
    SafeFormatter().format(record)
    assert record.args == ("a\nb",)


@pytest.mark.parametrize(("text", "expected"), [("\u2028", "\\u2028"), ("\x7f", "\\x7f"), ("\t", "\\t"),
                                                ("plain", "plain")])
def test_safe_text_escapes(text: str, expected: str) -> None:
    assert safe_text(text, 100) == expected
