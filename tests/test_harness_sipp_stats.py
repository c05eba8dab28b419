"""harness/sipp_stats.py: one SIPp side read back from the files a run leaves (-trace_stat, -trace_counts,
-trace_screen, -trace_err), as the benchmarks judge a step by them."""

from __future__ import annotations

from pathlib import Path

from harness.sipp_stats import int_field, last_file, read_csv_last, read_side, read_sipp_csv


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    header = list(rows[0])
    path.write_text(";".join(header) + ";\n" + "".join(";".join(row[k] for k in header) + ";\n" for row in rows))
    return path


def test_a_caller_side_with_failures_retransmissions_and_errors(tmp_path: Path) -> None:
    _csv(tmp_path / "uac_stat.csv", [
        {"OutgoingCall(C)": "4", "IncomingCall(C)": "0", "SuccessfulCall(C)": "3", "FailedCall(C)": "0",
         "FailedCallRejected(C)": "0"},
        {"OutgoingCall(C)": "10", "IncomingCall(C)": "0", "SuccessfulCall(C)": "9", "FailedCall(C)": "1",
         "FailedCallRejected(C)": "1"},
    ])
    _csv(tmp_path / "uac_1234_counts.csv", [{
        "1_INVITE_Sent": "10", "1_INVITE_Retrans": "2", "2_100_Recv": "10", "2_100_Timeout": "1",
        "3_200_Recv": "9", "3_200_Retrans": "1", "4_ACK_Sent": "9", "5_BYE_Recv": "9", "6_BYE_Recv": "2",
        "7_180_Unexp": "3",
    }])
    (tmp_path / "uac_screen.log").write_text("... 1 dead call msg ...\n 2 dead call msg (discarded)\n"
                                            " 0 out-of-call msg\n 1/0/0 UDP errors\n 0/2/0 UDP errors\n")
    (tmp_path / "uac_errors.log").write_text("unexpected message\n")
    side, rows = read_side("caller", "uac", tmp_path, 1)
    assert len(rows) == 2
    assert (side.role, side.exit_status, side.calls, side.successful, side.failed) == ("caller", 1, 10, 9, 1)
    assert side.failed_by_reason == {"CallRejected": 1}
    assert side.retrans_sent == {"1_INVITE": 2}
    # a 200 resent by the far end, and a second BYE the scenario catches as a retransmission
    assert side.retrans_received == {"3_200": 1, "6_BYE": 2}
    assert side.timeouts == {"2_100": 1} and side.unexpected == {"7_180": 3}
    assert (side.dead_call_msgs, side.out_of_call_msgs, side.udp_errors) == (2, 0, (1, 2, 0))
    assert side.errors_log_bytes == len("unexpected message\n")
    assert side.retransmissions == 2 + 1 + 2 + 2
    assert [bit.split(" ")[0] for bit in side.problems()] == ["failed", "resent", "received", "timeouts",
                                                             "unexpected", "dead-call", "UDP"]


def test_a_side_that_left_no_files_is_empty(tmp_path: Path) -> None:
    side, rows = read_side("callee", "uas", tmp_path, None)
    assert rows == [] and side.calls == side.retransmissions == side.errors_log_bytes == 0
    assert side.problems() == []


def test_csv_helpers(tmp_path: Path) -> None:
    path = _csv(tmp_path / "x_1_counts.csv", [{"A": "1", "B": " 7 "}, {"A": "-2", "B": "n/a"}])
    last, rows = read_csv_last(path)
    assert rows == read_sipp_csv(path) and last == {"A": "-2", "B": "n/a", "": ""}
    assert (int_field(last, "A"), int_field(last, "B"), int_field(rows[0], "B"), int_field(last, "C")) == (-2, 0, 7, 0)
    _csv(tmp_path / "x_2_counts.csv", [{"A": "1"}])
    assert last_file(tmp_path, "x_*_counts.csv").name == "x_2_counts.csv"
    assert not last_file(tmp_path, "y_*_counts.csv").exists()
