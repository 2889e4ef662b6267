"""A small TCP proxy that adds latency, for benchmarks (`tc netem` may be missing here).

Listens on 127.0.0.1 and forwards to a loopback target, holding every chunk `one_way`
seconds in each direction (so a round trip gains 2 × one_way), in order. Bounded: loopback
addresses only, at most `max_connections` at once, and it stops by itself after
`lifetime` seconds. It also counts round trips: a client→server chunk that follows a
server→client one (or opens the connection) starts a new exchange.

    with DelayProxy(("127.0.0.1", 5432), one_way=0.010) as proxy:
        url = f"postgresql://user@127.0.0.1:{proxy.port}/db"
"""

from __future__ import annotations

import contextlib
import ipaddress
import queue
import socket
import threading
import time
from types import TracebackType


class DelayProxy:
    def __init__(
        self,
        target: tuple[str, int],
        one_way: float = 0.010,
        max_connections: int = 64,
        lifetime: float = 1800.0,
        port: int = 0,
    ) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(target[0])).is_loopback:
            raise ValueError(f"the delay proxy only forwards to loopback, not {target[0]}")
        self.target = target
        self.one_way = one_way
        self.max_connections = max_connections
        self.deadline = time.monotonic() + lifetime
        self.round_trips = 0
        self._lock = threading.Lock()
        self._open = 0
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", port))
        self._sockets: list[socket.socket] = []
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop, and cut every connection (what an outage looks like to a client)."""
        self._stop.set()
        self._thread.join(2)
        self._server.close()
        with self._lock:
            cut, self._sockets = self._sockets, []
        for s in cut:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def reset_count(self) -> int:
        with self._lock:
            n, self.round_trips = self.round_trips, 0
        return n

    def _accept(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            with self._lock:
                if self._open >= self.max_connections:
                    client.close()
                    continue
                self._open += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                with self._lock:
                    self._open -= 1
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            state = {"last": "down"}  # the direction of the last chunk on this connection
            done = threading.Barrier(4, action=lambda c=client, u=upstream: self._closed(c, u))
            for src, dst, way in ((client, upstream, "up"), (upstream, client, "down")):
                q: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(
                    target=self._read, args=(src, q, way, state, done), daemon=True
                ).start()
                threading.Thread(target=self._write, args=(dst, q, done), daemon=True).start()

    def _closed(self, client: socket.socket, upstream: socket.socket) -> None:
        client.close()
        upstream.close()
        with self._lock:
            self._open -= 1

    def _read(
        self,
        src: socket.socket,
        q: queue.Queue[tuple[float, bytes]],
        way: str,
        state: dict[str, str],
        done: threading.Barrier,
    ) -> None:
        try:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    if way == "up" and state["last"] == "down":
                        self.round_trips += 1
                    state["last"] = way
                q.put((time.monotonic() + self.one_way, data))
        except OSError:
            pass
        q.put((0.0, b""))
        done.wait()

    def _write(
        self, dst: socket.socket, q: queue.Queue[tuple[float, bytes]], done: threading.Barrier
    ) -> None:
        try:
            while True:
                due, data = q.get()
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    break
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                dst.sendall(data)
        except OSError:
            pass
        done.wait()
