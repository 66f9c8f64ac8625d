"""A provider (or webhook receiver) on loopback that drips its answers.

It sends the head of its answer at once, then the body one byte every DRIP_EVERY seconds: no
single read waits long, so a per-read timeout never fires, and only a deadline on the whole
answer stops the wait (a drip lasts DRIP_BYTES * DRIP_EVERY = 10 s). What to do is in the path,
per key (a test's unique name):

    /drip/{key}/{fail}/{slow}   the key's first `fail` calls answer 503 at once (Retry-After: 0),
                                the next `slow` calls drip, later ones answer 200 at once

Every answer is JSON, {"key": ..., "call": n} (a dripped one padded with spaces). Per key the
server counts the calls and how each drip ended: `cut` (the client closed the connection before
the end of the body) or `finished`. Connections are kept alive between answers, so a client that
put a half-read connection back in its pool would be seen: that drip would not be cut.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass

import orjson

DRIP_BYTES = 200
DRIP_EVERY = 0.05


@dataclass
class Drips:
    calls: int = 0
    cut: int = 0
    finished: int = 0


class DrippingServer:
    """An asyncio server in its own thread; `with DrippingServer() as server: server.url`."""

    def __init__(self) -> None:
        self.keys: defaultdict[str, Drips] = defaultdict(Drips)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="dripping-server", daemon=True)

    def __enter__(self) -> DrippingServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the dripping server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for handler in self._handlers:  # connections a client still keeps open
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            while await self._answer(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # the server stops; a handler that ends cancelled is logged as an error by asyncio
        finally:
            writer.close()
            self._handlers.discard(handler)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection is over."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in lines
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "drip":
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return True
        key, fail, slow = parts[1], int(parts[2]), int(parts[3])
        drips = self.keys[key]
        drips.calls += 1
        body = orjson.dumps({"key": key, "call": drips.calls})
        if drips.calls <= fail:
            writer.write(_head(503, len(body), "Retry-After: 0\r\n") + body)
        elif drips.calls <= fail + slow:
            return await self._drip(reader, writer, body.ljust(DRIP_BYTES), drips)
        else:
            writer.write(_head(200, len(body)) + body)
        await writer.drain()
        return True

    async def _drip(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytes,
        drips: Drips,
    ) -> bool:
        writer.write(_head(200, len(body)))
        for i in range(len(body)):
            await asyncio.sleep(DRIP_EVERY)
            if reader.at_eof():  # the client closed the connection
                drips.cut += 1
                return False
            writer.write(body[i : i + 1])
            try:
                await writer.drain()
            except ConnectionError:
                drips.cut += 1
                return False
        drips.finished += 1
        return True


def _head(status: int, length: int, extra: str = "") -> bytes:
    reason = {200: "OK", 503: "Service Unavailable"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()
