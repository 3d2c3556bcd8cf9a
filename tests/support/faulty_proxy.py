"""An HTTP proxy in front of a real server that loses or holds chosen requests: the network faults
a client cannot tell apart (an answer that never came, a request that arrives late).

Each request goes to the server on a connection of its own (``Connection: close``), so requests
are told apart without parsing responses. A rule matches the request line (``POST /api/...``):

* ``lose``: the request reaches the server, which acts on it; the client's connection is closed
  without the answer.
* ``hold``: the request waits in the proxy until :meth:`FaultyProxy.release`; the client gives up
  meanwhile (its timeout), and the request then reaches the server all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Rule:
    action: str  # "lose" or "hold"
    contains: str
    times: int = 1
    matched: int = 0


@dataclass
class FaultyProxy:
    """Serves on ``url``; forwards to ``upstream`` (``http://host:port``)."""

    upstream: str
    url: str = ""
    rules: list[Rule] = field(default_factory=list)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _forwarded: list[asyncio.Task[None]] = field(default_factory=list)

    def lose(self, contains: str, times: int = 1) -> Rule:
        """Lose the answers of the next ``times`` requests whose request line contains ``contains``."""
        rule = Rule("lose", contains, times)
        self.rules.append(rule)
        return rule

    def hold(self, contains: str, times: int = 1) -> Rule:
        """Hold the next ``times`` such requests until :meth:`release`."""
        self._released.clear()
        rule = Rule("hold", contains, times)
        self.rules.append(rule)
        return rule

    async def release(self) -> None:
        """Let held requests reach the server; return once the server has answered them."""
        self._released.set()
        if self._forwarded:
            await asyncio.gather(*self._forwarded, return_exceptions=True)

    def _rule_for(self, request_line: str) -> Rule | None:
        for rule in self.rules:
            if rule.matched < rule.times and rule.contains in request_line:
                rule.matched += 1
                return rule
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                rule = self._rule_for(request.split(b"\r\n", 1)[0].decode(errors="replace"))
                if rule is None:
                    writer.write(await self._forward(request))
                    await writer.drain()
                    continue
                if rule.action == "lose":
                    await self._forward(request)
                    return
                # hold: the client is left waiting; the request goes on once released.
                task = asyncio.ensure_future(self._forward_when_released(request))
                self._forwarded.append(task)
                await task
                return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _forward_when_released(self, request: bytes) -> None:
        await self._released.wait()
        await self._forward(request)

    async def _forward(self, request: bytes) -> bytes:
        parts = urlsplit(self.upstream)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 request (head and Content-Length body), rewritten to ``Connection: close``."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head[:-4].split(b"\r\n")
    length = 0
    kept = [lines[0]]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() != b"connection":
            kept.append(line)
    kept.append(b"Connection: close")
    body = await reader.readexactly(length) if length else b""
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


@contextlib.asynccontextmanager
async def faulty_proxy(api_url: str) -> AsyncIterator[FaultyProxy]:
    """A proxy for the Prefect API at ``api_url``; ``proxy.url`` is the API's URL through it."""
    parts = urlsplit(api_url)
    proxy = FaultyProxy(upstream=f"http://{parts.hostname}:{parts.port}")
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.url = f"http://127.0.0.1:{port}{parts.path}"
    try:
        yield proxy
    finally:
        server.close()
        await proxy.release()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=5)
