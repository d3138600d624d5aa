"""Hostile answers over a real socket (issue 24, points 1 and 2): a compression bomb is refused while it is
inflated, within ``max_body_mb`` of memory, whatever its encodings; a server that sends its answer one byte at a
time is cut off at ``timeout`` for the whole request, headers or body.

The servers are raw asyncio servers on 127.0.0.1 (port 0), in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ordersync.errors import TooLargeError, TooSlowError, TransportError
from ordersync.http import MB, HttpClient, HttpSettings
from tests.support import read_request_head

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


@asynccontextmanager
async def server(serve: Serve) -> AsyncIterator[str]:
    """A raw HTTP/1.1 server on a free port; yields its base URL."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not await read_request_head(reader):
                return
            await serve(reader, writer)  # type: ignore[misc]
        except ConnectionError:
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with listening:
        yield f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"


def zeros(megabytes: int, wrap: Callable[[], Any]) -> bytes:
    """``megabytes`` of zeros through ``wrap()`` (a zlib compressor), built a megabyte at a time."""
    packer = wrap()
    parts = [packer.compress(bytes(MB)) for _ in range(megabytes)]
    return b"".join(parts) + packer.flush()


def gzipper() -> Any:
    return zlib.compressobj(9, zlib.DEFLATED, 16 | zlib.MAX_WBITS)


def deflater() -> Any:
    return zlib.compressobj(9)


BOMB_MB = 128
BOMBS = {  # Content-Encoding -> body: 128 MB of zeros, inflated by every layer in turn
    "gzip": lambda: zeros(BOMB_MB, gzipper),
    "gzip, gzip": lambda: gzip.compress(zeros(BOMB_MB, gzipper)),
    "deflate": lambda: zeros(BOMB_MB, deflater),
    "deflate, gzip": lambda: gzip.compress(zeros(BOMB_MB, deflater)),
    "gzip, identity, deflate": lambda: zlib.compress(zeros(BOMB_MB, gzipper)),
}


@pytest.mark.parametrize("encoding", list(BOMBS))
def test_a_compression_bomb_is_refused_while_inflating_within_the_limit_of_memory(encoding: str) -> None:
    """Before the fix, httpx inflated each layer of a chunk whole: 128 MB held at once for a 1 MB limit."""
    bomb = BOMBS[encoding]()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: %s\r\n"
                     b"content-length: %d\r\n\r\n%s" % (encoding.encode(), len(bomb), bomb))
        await writer.drain()

    async def go() -> int:
        async with server(serve) as url, HttpClient(url, label="shop", settings=HttpSettings(
                max_body_bytes=MB, max_retries=0)) as http:
            tracemalloc.start()
            try:
                with pytest.raises(TooLargeError, match="max_body_mb") as err:
                    await http.request("GET", "orders")
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                assert "\n" not in str(err.value)

    peak = asyncio.run(go())
    assert peak < 12 * MB, f"{peak / MB:.0f} MB held while refusing a {len(bomb):,}-byte answer"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "gzip, gzip", "identity", "deflate, gzip"])
def test_every_encoding_and_layering_still_decodes_exactly(encoding: str) -> None:
    body = b'[' + b",".join(b'{"id": %d, "note": "%s"}' % (i, b"x" * (i % 97)) for i in range(20_000)) + b']'
    encoded, header = body, encoding
    for layer in [e.strip() for e in encoding.split(",")]:  # applied in the order listed
        if layer == "raw deflate":
            packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            encoded, header = packer.compress(encoded) + packer.flush(), "deflate"
        elif layer != "identity":
            encoded = gzip.compress(encoded) if layer == "gzip" else zlib.compress(encoded)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ncontent-length: %d\r\n\r\n%s"
                     % (header.encode(), len(encoded), encoded))
        await writer.drain()

    async def go() -> bytes:
        async with server(serve) as url, HttpClient(url, label="shop") as http:
            return (await http.request("GET", "orders")).content

    assert asyncio.run(go()) == body


def test_an_encoding_that_is_not_decoded_is_one_line_not_a_retry() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 2\r\n\r\n[]")
        await writer.drain()

    async def go() -> None:
        async with server(serve) as url, HttpClient(url, label="shop") as http:
            with pytest.raises(TransportError, match="Content-Encoding 'br' is not one ordersync decodes"):
                await http.request("GET", "orders")
            assert http.requests_sent == 1

    asyncio.run(go())


def dribbler(where: str, sent: list[int]) -> Serve:
    """A server that sends its answer (a 200-byte body) one byte every 20 ms from ``where`` on (``headers`` or
    ``body``): four seconds for the whole answer, each read of it far quicker than any time-out."""
    body = b"[" + b"1," * 99 + b"1]"
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    start = 0 if where == "headers" else answer.index(b"\r\n\r\n") + 4

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer[:start])
        for i in range(start, len(answer)):
            await writer.drain()
            writer.write(answer[i:i + 1])
            sent[0] += 1
            await asyncio.sleep(0.02)
        await writer.drain()

    return serve


@pytest.mark.parametrize("where", ["headers", "body"])
def test_timeout_bounds_the_whole_request_not_each_read(where: str) -> None:
    """``timeout = 0.5`` against an answer that takes four seconds, a byte at a time: before the fix the request
    succeeded (httpx's time-out is per read); now it is cut off, and the next request still gets a connection."""
    sent = [0]

    async def go() -> None:
        async with server(dribbler(where, sent)) as url, HttpClient(url, label="shop", settings=HttpSettings(
                timeout=0.5, max_retries=1, max_connections=1, backoff_initial=0.01)) as http:
            with pytest.raises(TooSlowError, match=r"shop: GET /orders took longer than 0.5s"):
                await http.request("GET", "orders", retry_slow=False)
            with pytest.raises(TransportError, match="failed after 2 attempts: timed out after 0.5s"):
                await http.request("GET", "orders")
            assert http.requests_sent == 3

    asyncio.run(go())
    assert 0 < sent[0] < 200  # each answer was cut off part way
