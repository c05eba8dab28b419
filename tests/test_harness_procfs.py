"""harness/procfs.py: the /proc readers see this process and the sockets it binds (Linux only)."""

from __future__ import annotations

import os
import socket

from harness.procfs import cpu_seconds, cpu_times, is_listening, net_sockets, open_fds, process_state, rss_kb, status_kb


def test_a_bound_udp_socket_and_a_tcp_listener_are_seen_and_gone_once_closed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        udp_port, tcp_port = udp.getsockname()[1], tcp.getsockname()[1]
        assert is_listening(udp_port, "udp")
        assert not is_listening(tcp_port, "tcp"), "bound but not listening yet"
        tcp.listen()
        assert is_listening(tcp_port, "tcp")
        assert (udp_port, "07") in set(net_sockets("udp"))
    assert not is_listening(udp_port, "udp") and not is_listening(tcp_port, "tcp")


def test_a_connected_tcp_socket_is_not_a_listener() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            client_port = client.getsockname()[1]
            assert any(port == client_port for port, _ in net_sockets("tcp"))
            assert not is_listening(client_port, "tcp")


def test_this_process_readings() -> None:
    pid = os.getpid()
    assert process_state(pid) in "RS"
    assert cpu_seconds(pid) > 0
    memory = status_kb(pid)
    assert set(memory) == {"VmRSS", "RssAnon", "VmHWM"} and memory["VmHWM"] >= memory["VmRSS"] > 1000
    assert rss_kb(pid) > 1000 and set(status_kb(pid, ("VmRSS",))) == {"VmRSS"}
    cpus = cpu_times()
    assert len(cpus) == os.cpu_count()
    assert all(0 <= busy <= total for busy, total in cpus.values())


def test_open_descriptors_count_one_more_socket_and_one_fewer_once_closed() -> None:
    pid = os.getpid()
    before = open_fds(pid)
    with socket.socket():
        assert open_fds(pid) == before + 1
    assert open_fds(pid) == before
