"""A pass-through TCP relay on 127.0.0.1: the same server, behind a second address.

Why: an *identical* candidate must never turn a gate red. The most literal identical candidate is the baseline
server itself reached through another endpoint — as a migration often looks at first (a new gateway route in front
of the old deployment). The relay forwards bytes both ways unchanged; nothing in it knows HTTP, so whatever the
harness sees through it is exactly what the server sent. Used by the self-comparison tests.

Use as a context manager: ``with PassThrough(server.port) as relay: relay.base_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

HOST = "127.0.0.1"


class PassThrough:
    """Relay connections from an ephemeral port on 127.0.0.1 to ``HOST:target_port`` (in a background thread)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def __enter__(self) -> PassThrough:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        sock.listen(128)
        self.port = int(sock.getsockname()[1])
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(sock, ready),), daemon=True,
                                        name=f"PassThrough:{self.port}")
        self._thread.start()
        ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _main(self, sock: socket.socket, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._relay, sock=sock)
        ready.set()
        async with server:
            await self._stop.wait()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
