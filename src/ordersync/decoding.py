"""Content-Encoding decoded with a bound on what it may produce, *while* decoding.

httpx's decoders inflate a whole network chunk at once, with no limit on the output: 1.8 kB of ``gzip, gzip``
(a gzip of a gzip of 1 GB of zeros) becomes a gigabyte in one call, long before any size check sees it. Here
each layer inflates at most :data:`STEP` bytes per call (``zlib``'s ``max_length``), and each piece goes through
the following layers before the next is made, so what is held at once is a few steps per layer, whatever the
compression ratio or the number of layers. The caller counts the decoded bytes and stops at its limit.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator

import httpx

STEP = 256 * 1024  # the most one layer produces per call: the memory a layer holds while decoding


class UnsupportedEncoding(Exception):
    """An encoding ordersync cannot decode (it never asks for one: it sends ``Accept-Encoding: gzip, deflate``)."""


class _Inflate:
    """One gzip or deflate layer. Deflate is zlib-wrapped by the standard, raw in some servers: like httpx, the
    raw form is tried when the wrapped one fails on the first bytes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate ``data`` at most :data:`STEP` bytes at a time (an empty ``data`` drains what zlib holds)."""
        while not self._z.eof:  # after the end of the stream, trailing bytes are dropped, never kept
            try:
                out = self._z.decompress(data, STEP)
            except zlib.error as exc:
                if self.encoding == "deflate" and not self._started:
                    self._z, self._started = zlib.decompressobj(-zlib.MAX_WBITS), True
                    continue
                raise httpx.DecodingError(f"the answer's {self.encoding} encoding is corrupt: {exc}") from None
            self._started = True
            data = self._z.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < STEP:  # input used up and nothing more held inside zlib
                return

    def flush(self) -> Iterator[bytes]:
        yield from self.feed(b"")


class Decoder:
    """The layers of a ``Content-Encoding`` header, undone last to first; ``identity`` is no layer."""

    def __init__(self, content_encoding: str | None) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",") if n.strip()]
        unknown = [n for n in names if n not in ("gzip", "x-gzip", "deflate", "identity")]
        if unknown:
            raise UnsupportedEncoding(f"the answer's Content-Encoding {unknown[0]!r} is not one ordersync decodes "
                                      "(gzip, deflate, identity)")
        self.layers = [_Inflate("gzip" if n == "x-gzip" else n) for n in reversed(names) if n != "identity"]

    def decode(self, data: bytes) -> Iterable[bytes]:
        """The decoded pieces of ``data``, lazily: nothing is produced before the caller asks for it."""
        pieces: Iterable[bytes] = (data,)
        for layer in self.layers:
            pieces = _through(layer, pieces)
        return pieces

    def flush(self) -> Iterable[bytes]:
        """What the layers still hold at the end of the body."""
        pieces: Iterable[bytes] = ()
        for layer in self.layers:
            pieces = itertools.chain(_through(layer, pieces), layer.flush())
        return pieces


def _through(layer: _Inflate, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from layer.feed(piece)
