"""The gateway's HTTP/1.1 connections: uvicorn's httptools protocol, with the gateway's refusals.

llhttp (Node.js's parser, through httptools) reads the requests: framing, chunked bodies,
``Expect: 100-continue``, keep-alive, pipelining. It refuses what it cannot read; uvicorn answers
those refusals with a plain-text 400. The gateway's clients get what its other errors look like
instead: JSON, the status the refusal deserves (414, 431, 501 or 400) and a message saying why
(`refusal`). Three bounds besides, which uvicorn leaves out:

- a request's head is at most `MAX_HEAD` bytes (llhttp has no bound of its own): it is fed a
  slice at a time while it is read, and refused once it outgrows the bound;
- a Transfer-Encoding other than plain ``chunked`` is refused (llhttp reads ``gzip, chunked`` as
  chunked, leaving the gzip to the application; API Gateway does not decode it either);
- a connection that sends nothing for ``timeout_keep_alive`` seconds since it opened, or in the
  middle of a request, is closed (uvicorn times out only the wait between two requests).

And a client that shuts its side down once its request is sent (a half-close) still gets the
answer, as from any HTTP/1.1 server (uvicorn would close the connection at once).

Why httptools rather than h11: llhttp is C; at 8 keep-alive connections h11's pure-Python parsing
was a tenth of the gateway's time a request (README, "Measured figures").
"""

from __future__ import annotations

import asyncio
import json
import logging
from enum import Enum
from http import HTTPStatus

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The largest request head (request line and headers) read: past it, 414 or 431.
MAX_HEAD = 64 * 1024
SLICE = 1024  # how much of a head llhttp gets at a time: MAX_HEAD holds to within this
log = logging.getLogger("gateway")


class Reading(Enum):
    """Where the client is in its latest request."""

    NOTHING = "no request begun, or the last one answered"
    HEAD = "its request line and headers"
    BODY = "its body"
    WHOLE = "a whole request awaits its answer"


class Refusal(Exception):
    """A request refused before it reaches the gateway: the status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class GatewayProtocol(HttpToolsProtocol):
    """One client connection (`uvicorn.Config`'s ``http``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.reading = Reading.NOTHING
        self.head_bytes = 0  # of the request being read, while its head is
        self.client_done = False  # the client has shut its side down: it sends nothing more
        self._await_client()

    # What llhttp reads, as it reads it.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading, self.head_bytes = Reading.HEAD, 0

    def on_headers_complete(self) -> None:
        for name, value in self.headers:
            if name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                raise Refusal(501, "a Transfer-Encoding other than chunked is not supported")
        self.reading = Reading.BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        answered = self.cycle is not None and self.cycle.response_complete  # before its body
        self.reading = Reading.NOTHING if answered else Reading.WHOLE

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            view = memoryview(data)
            while len(view) > SLICE and self.reading is not Reading.BODY:
                self._feed(view[:SLICE])
                view = view[SLICE:]
            self._feed(view)
        except (httptools.HttpParserError, Refusal) as error:
            self.refuse(*refusal(error))
            return
        except httptools.HttpParserUpgrade:  # llhttp reads nothing after it: the request is whole
            self._answer_without_upgrade()
        if self.reading is not Reading.WHOLE and not self.transport.is_closing():
            self._await_client()  # a request is begun, or none: the client owes the next byte

    def _feed(self, data: memoryview) -> None:
        self.parser.feed_data(data)
        if self.reading is Reading.HEAD:
            self.head_bytes += len(data)  # the slice's bytes before the request began too
            if self.head_bytes > MAX_HEAD:
                if len(self.url) + SLICE >= self.head_bytes:  # all of it but the method
                    raise Refusal(414, f"request line over {MAX_HEAD} bytes")
                raise Refusal(431, f"request headers over {MAX_HEAD} bytes in all")

    def _answer_without_upgrade(self) -> None:
        """A request to switch protocols (none is offered) is answered as it is, then the
        connection is closed: what follows its head is not HTTP/1.1."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            self.cycle.more_body = False
            self.cycle.message_event.set()
        self.reading = Reading.WHOLE

    # The connection's ends.
    def eof_received(self) -> bool:
        """The client sends nothing more: answer the request it sent (or whose answer needs no
        more of it), then close; with none begun, close now."""
        self.client_done = True
        if self.reading in (Reading.NOTHING, Reading.HEAD) and not self.pipeline:
            self.transport.close()
        return True  # keep the connection open for the answer

    def on_response_complete(self) -> None:
        following = self.pipeline[-1][0] if self.pipeline else None  # the next one to answer
        super().on_response_complete()
        if following is None and self.reading is Reading.WHOLE:
            self.reading = Reading.NOTHING  # the latest request is answered
        if self.client_done and (following is None or following.more_body):
            self.transport.close()  # no other whole request from it to answer

    def _await_client(self) -> None:
        """Close the connection unless the client sends something within the idle timeout."""
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.transport.close
        )

    def refuse(self, status: int, message: str) -> None:
        """Answer a request refused before it reached the gateway, in JSON, and close."""
        log.info(json.dumps({"status": status, "refused": message}))
        answering = self.cycle is not None and self.cycle.response_started
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the request is over: its function never runs
            self.cycle.message_event.set()
        if not answering:  # else an answer had begun: it is cut short
            body = json.dumps({"message": message}).encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
                + b"Content-Type: application/json\r\n"
                + b"Content-Length: %d\r\n" % len(body)
                + b"Connection: close\r\n\r\n"
                + body
            )
        self.transport.close()


def refusal(error: Exception) -> tuple[int, str]:
    """The status and message for a request llhttp (or the protocol) refused."""
    if isinstance(error, httptools.HttpParserCallbackError) and error.__context__:
        error = error.__context__  # raised in one of the protocol's callbacks
    if isinstance(error, Refusal):
        return error.status, str(error)
    text = str(error) or type(error).__name__
    if "Transfer-Encoding" in text and "Content-Length" in text:
        return 400, "send either Content-Length or chunked, not both"
    if "Transfer-Encoding" in text:
        return 501, "a Transfer-Encoding other than chunked is not supported"
    if "chunk" in text.lower():
        return 400, "malformed chunked body"
    if "Duplicate Content-Length" in text:
        return 400, "Content-Length given twice"
    if "Content-Length" in text:
        return 400, "the Content-Length header is not a length"
    return 400, f"not an HTTP/1.1 request: {text}"
