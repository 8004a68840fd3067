"""Reading an answer's body with a bound on its size, decompressed by us rather than by httpx.

httpx decompresses ``Content-Encoding: gzip`` / ``deflate`` while the body is read, and one chunk of a
few kilobytes may inflate a thousandfold: counting the bytes httpx hands out would notice a
"zip bomb" only after it had filled the memory. So ``BodyReader`` decompresses itself, asking zlib
for at most the bytes still allowed (``max_length``), and the response it belongs to no longer names
an encoding (``app.net.transports.BodyLimitTransport`` removes the header), so httpx passes the
bytes through unchanged.

Only the encodings this service asks for (``Accept-Encoding: gzip, deflate``) are read; an answer
in another one is refused as unreadable rather than handed on undecoded.
"""

from __future__ import annotations

import zlib

ACCEPTED_ENCODINGS = "gzip, deflate"


class TooLarge(Exception):
    """The body is longer than allowed (decompressed)."""


class UnsupportedEncoding(Exception):
    """The answer is encoded in a way this service did not ask for."""


class CorruptBody(Exception):
    """The compressed body does not decompress."""


class BodyReader:
    """Turns the raw chunks of one body into at most ``limit`` decoded bytes, or raises ``TooLarge``."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        self._left = limit
        self._zlib: zlib._Decompress | None = None
        self._deflate = False
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            # RFC 9110 says zlib-wrapped, some servers send it raw: try the wrapper first, as httpx does.
            self._zlib = zlib.decompressobj()
            self._deflate = True
        elif encoding not in ("identity", ""):
            raise UnsupportedEncoding(encoding)
        self._started = False

    @property
    def decodes(self) -> bool:
        """Whether the raw bytes are compressed (the response's encoding header must then go)."""
        return self._zlib is not None

    def feed(self, chunk: bytes) -> bytes:
        """The decoded bytes of ``chunk``; ``TooLarge`` once the body exceeds the limit."""
        if self._zlib is None:
            return self._take(chunk)
        try:
            try:
                decoded = self._zlib.decompress(chunk, self._left + 1)
            except zlib.error:
                if not (self._deflate and not self._started):
                    raise
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                decoded = self._zlib.decompress(chunk, self._left + 1)
        except zlib.error as exc:
            raise CorruptBody(str(exc)) from None
        self._started = True
        if self._zlib.unconsumed_tail:  # zlib stopped at max_length: there is more than allowed
            raise TooLarge
        return self._take(decoded)

    def finish(self) -> bytes:
        """What the decompressor still holds once the raw body has ended."""
        if self._zlib is None:
            return b""
        try:
            return self._take(self._zlib.flush())
        except zlib.error as exc:
            raise CorruptBody(str(exc)) from None

    def _take(self, data: bytes) -> bytes:
        if len(data) > self._left:
            raise TooLarge
        self._left -= len(data)
        return data
