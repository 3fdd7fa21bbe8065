"""When Prefect is unreachable: the exporter stays up, says so with prefect_up 0, keeps its own
metrics, and serves the last good Prefect data only until --prefect.max-staleness."""

from __future__ import annotations

import socket
import threading
import time

from harness import free_port

TRANSPORT_CODES = {"timeout", "connection_error", "tls_error", "error"}


def _prefect_families(s) -> set[str]:
    own = ("prefect_up", "prefect_exporter_")
    return {n for n in s.names() if n.startswith("prefect_") and not n.startswith(own)}


def test_prefect_unreachable_from_the_start(start_exporter):
    closed = free_port()  # nothing listens here
    exp = start_exporter(["--prefect.timeout", "2s", "--prefect.connect-timeout", "1s"],
                         api_url=f"http://127.0.0.1:{closed}/api", wait="metrics")
    s = exp.wait_scrape(lambda s: s.value("prefect_exporter_polls_total", default=0, result="failure") >= 2,
                        timeout=30, message="two failed polls")
    assert exp.alive()
    assert s.value("prefect_up") == 0
    assert not s.series("prefect_flow_runs"), "no Prefect data was ever read: no prefect_flow_runs"
    assert not _prefect_families(s), _prefect_families(s)
    codes = {dict(l)["code"] for l, v in s.series("prefect_exporter_api_requests_total").items() if v > 0}
    assert "connection_error" in codes, codes
    assert codes <= TRANSPORT_CODES, codes
    assert s.value("prefect_exporter_last_poll_success_timestamp_seconds", default=0) == 0
    assert s.series("prefect_exporter_build_info")
    assert exp.get("/-/healthy").status_code == 200


class CuttableProxy:
    """A TCP forwarder on 127.0.0.1 to the Prefect server that can be cut (connections reset,
    listener closed: connection refused) and restored on the same port."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener:
            # shutdown() first: close() alone leaves a socket blocked in accept() listening (Linux).
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def close(self) -> None:
        self.cut()


def test_prefect_goes_away_and_comes_back(prefect_server, prefect, unique_name, start_exporter):
    pool = unique_name("pool")
    prefect.create_pool(pool)
    dep = prefect.create_deployment(f"flow-{pool}", "d", pool, "q")
    prefect.run_in_state(dep, "RUNNING")
    proxy = CuttableProxy(prefect_server.port)
    try:
        exp = start_exporter(["--prefect.max-staleness", "4s", "--prefect.retries", "0",
                              "--prefect.timeout", "2s", "--prefect.connect-timeout", "1s"],
                             api_url=f"http://127.0.0.1:{proxy.port}/api")
        s = exp.scrape()
        key = dict(work_pool=pool, work_queue="q", deployment=dep["full_name"], state_type="RUNNING", state_name="Running")
        assert s.value("prefect_flow_runs", **key) == 1
        last_ok = s.value("prefect_exporter_last_poll_success_timestamp_seconds")

        proxy.cut()
        cut_at = time.time()
        s = exp.wait_scrape(lambda s: s.value("prefect_up") == 0, timeout=15, message="prefect_up 0")
        # Within max-staleness the last good data is still served.
        if time.time() - last_ok < 3:
            assert s.value("prefect_flow_runs", **key) == 1
        # After it, the Prefect-derived families are gone, the exporter's own remain.
        s = exp.wait_scrape(lambda s: not _prefect_families(s), timeout=20,
                            message="Prefect families dropped after max-staleness")
        assert time.time() - last_ok >= 4 - 0.5
        assert s.value("prefect_up") == 0
        assert s.value("prefect_exporter_last_poll_success_timestamp_seconds") <= cut_at + 0.5
        codes = {dict(l)["code"] for l in s.series("prefect_exporter_api_requests_total")}
        assert codes & TRANSPORT_CODES, codes

        proxy.restore()
        s = exp.wait_scrape(lambda s: s.value("prefect_up") == 1, timeout=20, message="prefect_up back to 1")
        assert s.value("prefect_flow_runs", **key) == 1
    finally:
        proxy.close()
