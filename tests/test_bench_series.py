"""benchmarks/series.py: SIPp's periodic dumps, the GC probe's file and the rtt file cut into windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.hostwatch import HostEvent
from benchmarks.series import (
    Counter,
    GcPause,
    Retransmissions,
    Sample,
    Window,
    counts_retransmissions,
    percentile,
    read_gc,
    read_rtt,
    retransmission_columns,
    series_table,
    stat_counter,
    windows,
)
from harness.sipp_stats import read_sipp_csv

T0 = 1_796_391_555.0


def _time(t: float) -> str:
    return f"2026-12-04\t13:39:15.000000\t{t:.6f}"


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text(";".join(header) + ";\n" + "".join(";".join(map(str, r)) + ";\n" for r in rows))
    return path


CALLER_COUNTS = ["CurrentTime", "ElapsedTime", "0_INVITE_Sent", "0_INVITE_Retrans", "1_100_Recv", "1_100_Retrans",
                 "3_200_Recv", "3_200_Retrans", "6_BYE_Sent", "6_BYE_Retrans", "7_200_Recv", "7_200_Retrans"]
CALLEE_COUNTS = ["CurrentTime", "ElapsedTime", "0_INVITE_Recv", "0_INVITE_Retrans", "2_200_Sent", "2_200_Retrans",
                 "3_ACK_Recv", "3_ACK_Retrans", "4_BYE_Recv", "4_BYE_Retrans", "6_BYE_Recv"]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) is None
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0
    assert percentile([1.0, 2.0], 100) == 2.0


def test_read_sipp_csv_keys_rows_by_header_and_tolerates_missing_or_empty(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", ["CurrentTime", "CurrentCall"], [[_time(T0), 3]])
    assert read_sipp_csv(path) == [{"CurrentTime": _time(T0), "CurrentCall": "3", "": ""}]
    assert read_sipp_csv(tmp_path / "missing.csv") == []
    (tmp_path / "empty.csv").write_text("CurrentTime;\n")
    assert read_sipp_csv(tmp_path / "empty.csv") == []


def test_retransmission_columns_are_retrans_and_a_second_recv_of_a_request() -> None:
    assert retransmission_columns(CALLER_COUNTS) == [
        "0_INVITE_Retrans", "1_100_Retrans", "3_200_Retrans", "6_BYE_Retrans", "7_200_Retrans"]
    assert retransmission_columns(CALLEE_COUNTS)[-1] == "6_BYE_Recv"
    assert "4_BYE_Recv" not in retransmission_columns(CALLEE_COUNTS)


def test_counter_is_zero_before_its_first_dump_and_steps_at_each() -> None:
    c = Counter((10.0, 11.0, 12.0), (0, 4, 4))
    assert [c.at(t) for t in (9.0, 10.0, 10.5, 11.0, 99.0)] == [0, 0, 0, 4, 4]
    assert c.between(10.0, 11.0) == 4 and c.between(11.0, 12.0) == 0
    assert c.rises() == [11.0]


def test_retransmissions_sum_counts_of_both_sides_and_dead_call_messages(tmp_path: Path) -> None:
    caller = read_sipp_csv(_write(tmp_path / "uac.csv", CALLER_COUNTS, [
        [_time(T0 + 1), "00:00:01", 10, 0, 10, 0, 10, 0, 0, 0, 0, 0],
        [_time(T0 + 2), "00:00:02", 20, 3, 20, 1, 20, 0, 5, 2, 3, 0],
        [_time(T0 + 3), "00:00:03", 30, 3, 30, 1, 30, 0, 15, 2, 13, 0]]))
    callee = read_sipp_csv(_write(tmp_path / "uas.csv", CALLEE_COUNTS, [
        [_time(T0 + 1.5), "00:00:01", 10, 0, 10, 0, 10, 0, 0, 0, 0],
        [_time(T0 + 4.5), "00:00:04", 30, 0, 30, 0, 30, 0, 15, 0, 1]]))
    stats = read_sipp_csv(_write(tmp_path / "stat.csv", ["CurrentTime", "DeadCallMsgs(C)", "CurrentCall"], [
        [_time(T0 + 1), 0, 10], [_time(T0 + 2), 2, 19], [_time(T0 + 3), 2, 17]]))
    assert counts_retransmissions(caller).values == (0, 6, 6)
    retrans = Retransmissions.of([caller, callee], [stats])
    assert retrans.between(T0, T0 + 2) == 8
    assert retrans.between(T0 + 2, T0 + 10) == 1
    assert retrans.last_after(T0 + 1.5) == 3.0  # the callee's dump at +4.5 counted its BYE resent
    assert retrans.last_after(T0 + 5) is None
    assert stat_counter(stats, "CurrentCall").values == (10, 19, 17)


def test_read_gc_skips_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "gc.log"
    path.write_text(f"{T0 + 1:.3f} 1 1.5 10\n{T0 + 2:.3f} 2 52.25 0\n{T0 + 3:.3f} 0 1.")
    assert read_gc(path) == [GcPause(T0 + 1, 1, 1.5, 10), GcPause(T0 + 2, 2, 52.25, 0)]
    assert read_gc(tmp_path / "none.log") == []


def test_read_rtt_keeps_one_response_time_dated_from_sipp_start(tmp_path: Path) -> None:
    path = tmp_path / "rtt.csv"
    path.write_text("Date_ms;response_time_ms;rtd_no\n104.001;4;setup\n212.001;0;bye\n1500;12;setup\n")
    assert read_rtt(path, T0) == [(T0 + 0.104001, 4.0), (T0 + 1.5, 12.0)]
    assert read_rtt(tmp_path / "none.csv", T0) == []


def test_windows_cut_the_step_and_put_each_source_in_its_window() -> None:
    retrans = Retransmissions((Counter((T0 + 5, T0 + 15, T0 + 25), (0, 7, 7)),))
    in_flight = Counter((T0 + 5, T0 + 12, T0 + 18, T0 + 24), (100, 300, 250, 90))
    samples = [Sample(T0, 10.0, 50 * 1024), Sample(T0 + 10, 15.0, 60 * 1024), Sample(T0 + 20, 16.0, 61 * 1024),
               Sample(T0 + 25.1, 16.5, 62 * 1024)]
    pauses = [GcPause(T0 - 1, 2, 900.0, 0), GcPause(T0 + 11, 1, 3.0, 5), GcPause(T0 + 12, 2, 40.0, 0)]
    setups = [(T0 + 1, 2.0), (T0 + 3, 6.0), (T0 + 14, 1000.0)]
    created = Counter((T0 + 5, T0 + 15, T0 + 25), (50, 250, 400))
    out = windows(T0, T0 + 25, retrans, in_flight, created, samples, pauses, setups, width=10.0)
    assert out == [
        Window(0.0, 10.0, 0, 100, 50, 5.0, 50.0, 60.0, None, 6.0),
        Window(10.0, 20.0, 7, 300, 200, 1.0, 10.0, 61.0, 40.0, 1000.0),
        Window(20.0, 25.0, 0, 90, 150, 0.5, pytest.approx(100 * 0.5 / 5.1), 62.0, None, None),  # type: ignore[arg-type]
    ]
    table = series_table(out, 1.0)
    assert table.splitlines()[2] == "| 0-10 | 0 | 100 | 50 | 60.0 | <1 | 6 |"
    assert table.splitlines()[3] == "| 10-20 | 7 | 300 | 10 | 61.0 | 40.0 | 1000 |"
    assert table.splitlines()[4] == "| 20-25 | 0 | 90 | 10 | 62.0 | <1 | - |"
    assert series_table(out[:1], None).splitlines()[2] == "| 0-10 | 0 | 100 | 50 | 60.0 | - | 6 |"


def test_windows_take_each_host_watchers_longest_late_wake_up_and_lowest_speed_and_the_table_shows_them() -> None:
    host = [[HostEvent(T0 + 2, "late", 15.0), HostEvent(T0 + 4, "late", 40.0), HostEvent(T0 + 5, "slow", 0.7),
             HostEvent(T0 + 6, "slow", 0.62), HostEvent(T0 + 30, "late", 500.0)],
            [HostEvent(T0 + 12, "late", 22.0)]]
    out = windows(T0, T0 + 20, Retransmissions(()), Counter((), ()), Counter((), ()), [], [], [], width=10.0,
                  host=host)
    assert [(w.host_late_ms, w.host_speed) for w in out] == [((40.0, 0.0), (0.62, 1.0)), ((0.0, 22.0), (1.0, 1.0))]
    table = series_table(out, None, (0, 1)).splitlines()
    assert table[0].endswith("| INVITE→200 max ms | host late ms (CPU 0 / 1) | host speed % (CPU 0 / 1) |")
    assert table[1].endswith("|---:|---:|---:|") and table[1].count("|") == table[0].count("|")
    assert table[2] == "| 0-10 | 0 | 0 | - | - | - | - | 40 / - | 62 / - |"
    assert table[3] == "| 10-20 | 0 | 0 | - | - | - | - | - / 22 | - / - |"
    bare = windows(T0, T0 + 5, Retransmissions(()), Counter((), ()), Counter((), ()), [], [], [])[0]
    assert bare.host_late_ms == bare.host_speed == ()


def test_windows_without_samples_show_no_cpu_nor_rss() -> None:
    out = windows(T0, T0 + 3, Retransmissions(()), Counter((), ()), Counter((), ()), [], [], [], width=10.0)
    assert out == [Window(0.0, 3.0, 0, 0, 0, None, None, None, None, None)]
