"""The gateway's HTTP/1.1 connections: uvicorn's httptools protocol, with the gateway's refusals.

llhttp (Node.js's parser, through httptools) reads the requests: framing, chunked bodies,
``Expect: 100-continue``, keep-alive, pipelining. It refuses what it cannot read; uvicorn answers
those refusals with a plain-text 400. The gateway's clients get what its other errors look like
instead: JSON, the status the refusal deserves (414, 431, 501 or 400) and a message saying why
(`refusal`). Three bounds besides, which uvicorn leaves out:

- a request's head is at most `MAX_HEAD` bytes (llhttp has no bound of its own): each read is
  fed a slice at a time, and a head is refused once it outgrows the bound; so is a chunked
  body's framing between two pieces of the body (chunk sizes and extensions, its trailers,
  which are dropped, never added to the request's headers: its event has no place for them);
- a Transfer-Encoding other than plain ``chunked`` is refused (llhttp reads ``gzip, chunked`` as
  chunked, leaving the gzip to the application; API Gateway does not decode it either);
- a connection that sends nothing for ``timeout_keep_alive`` seconds since it opened, or in the
  middle of a request, is closed (uvicorn times out only the wait between two requests).

And a client that shuts its side down once its request is sent (a half-close) still gets the
answer, as from any HTTP/1.1 server (uvicorn would close the connection at once); a request that
asks to switch protocols (``Upgrade``, none offered) is answered as HTTP/1.1, then the connection
closes (llhttp leaves what follows its head to the new protocol).

Why httptools rather than h11: llhttp is C. h11, pure Python, and uvicorn's protocol around it
were 17 % of the gateway's CPU a request under load (`py-spy record --gil`), llhttp and uvicorn
2 %; the accept rate at 8 keep-alive connections went from 0.71-0.84x raw SendMessage (median
0.76x) to 0.74-0.88x (median 0.78x) (README, "Measured figures").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from enum import Enum
from http import HTTPStatus
from itertools import chain

import httptools
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: The largest request head (request line and headers) read: past it, 414 or 431.
MAX_HEAD = 64 * 1024
SLICE = 1024  # how much of a read llhttp gets at a time: MAX_HEAD holds to within this
log = logging.getLogger("gateway")


class Reading(Enum):
    """Where llhttp is in the client's latest request."""

    NOTHING = "between requests"
    HEAD = "its request line and headers"
    BODY = "its body (chunked: its chunks' sizes and its trailers too)"


class Refusal(Exception):
    """A request refused before it reaches the gateway: the status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class GatewayProtocol(HttpToolsProtocol):
    """One client connection (`uvicorn.Config`'s ``http``).

    llhttp reads every request a read holds, so pipelined requests are parsed before the ones
    ahead of them are answered (uvicorn queues them in ``pipeline``); a refusal of a later one
    waits for those answers (``held``), as a client reads answers in the order it sent. The
    idle timer runs whenever no whole request awaits its answer (`_owed`): then the client owes
    the next byte."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.reading = Reading.NOTHING
        self.framing = 0  # bytes read since its head began, or since the last of its body
        self.running: RequestResponseCycle | None = None  # the request started last
        self.held: tuple[int, str] | None = None  # a refusal waiting for the answers before it
        self.switching = False  # a request asked to switch protocols: nothing after it is read
        self.client_done = False  # the client has shut its side down: it sends nothing more
        self._await_client()

    # What llhttp reads, as it reads it.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading, self.framing = Reading.HEAD, 0

    def on_headers_complete(self) -> None:
        if len(self.url) > 0xFFFF:  # httptools reads no longer URL: one that ends in the last slice
            raise Refusal(414, f"request line over {MAX_HEAD} bytes")
        for name, value in self.headers:
            if name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                raise Refusal(501, "a Transfer-Encoding other than chunked is not supported")
        super().on_headers_complete()
        self.reading, self.framing = Reading.BODY, 0  # its cycle is made: `self.cycle`

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.reading is not Reading.BODY:  # a chunked body's trailers are not its headers
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        self.framing = 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading = Reading.NOTHING  # its answer is its cycle's to give

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self.running = cycle
        cycle.transport = OneSend(cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        if self.held or self.switching:
            return  # the connection closes once the answers before it are sent
        self._unset_keepalive_if_required()
        try:
            view = memoryview(data)
            while len(view) > SLICE:  # a body may end and a head begin anywhere in a read
                self._feed(view[:SLICE])
                view = view[SLICE:]
            self._feed(view)
        except (httptools.HttpParserError, Refusal) as error:
            own = self.cycle if self.reading is Reading.BODY else None  # a refused body
            self.refuse(*refusal(error), own)
            return
        except httptools.HttpParserUpgrade:
            self._answer_without_upgrade()
            return
        self._watch()

    def _feed(self, data: memoryview) -> None:
        """Feed one slice; refuse a head, or a chunked body's framing between two pieces of it
        (chunk sizes and extensions, trailers), once it outgrows `MAX_HEAD`."""
        self.parser.feed_data(data)
        if self.reading is Reading.NOTHING:
            return
        self.framing += len(data)  # the whole slice: to within SLICE of what it was
        if self.framing <= MAX_HEAD:
            return
        if self.reading is Reading.BODY:
            raise Refusal(431, f"chunk framing or trailers over {MAX_HEAD} bytes")
        # The slice's bytes before the request began, and its method (llhttp's longest:
        # UNSUBSCRIBE), are counted too.
        if len(self.url) + SLICE + len("UNSUBSCRIBE ") >= self.framing:
            raise Refusal(414, f"request line over {MAX_HEAD} bytes")
        raise Refusal(431, f"request headers over {MAX_HEAD} bytes in all")

    def _answer_without_upgrade(self) -> None:
        """A request to switch protocols: none is offered, so it is answered as HTTP/1.1, then
        the connection closes. llhttp read its head only (what follows is the new protocol's),
        so one that declares a body is refused rather than answered without it."""
        self.switching = True
        declared = dict(self.headers)  # llhttp checked the length is digits
        if int(declared.get(b"content-length", b"0")) or b"transfer-encoding" in declared:
            self.refuse(400, "a request with a body cannot ask to switch protocols", self.cycle)
        else:
            self.cycle.keep_alive = False

    def _owed(self) -> bool:
        """Whether a request read whole is still to be answered (the gateway owes the next
        byte)."""
        # Newest first: all but the newest are whole, so this stops within two (however many
        # requests a client pipelines, each answer and read asks it again).
        cycles = chain(
            (cycle for cycle, _ in self.pipeline), [self.running] if self.running else []
        )
        return any(
            not (cycle.more_body or cycle.response_complete or cycle.disconnected)
            for cycle in cycles
        )

    def _watch(self) -> None:
        """Run the idle timer exactly when no answer is owed: the client owes the next byte."""
        if self._owed():
            self._unset_keepalive_if_required()
        else:
            self._await_client()

    def _await_client(self) -> None:
        """Close the connection unless the client sends something within the idle timeout."""
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.transport.close
        )

    # The connection's ends.
    def eof_received(self) -> bool:
        """The client sends nothing more: the requests it sent whole are answered, then the
        connection closes; a body it left unfinished is over (its request is never answered);
        with nothing to answer, it closes now."""
        self.client_done = True
        if self.reading is Reading.BODY:
            self._abandon(self.cycle)
        if self._owed():
            self._unset_keepalive_if_required()  # the answers are owed; nothing more from it
        else:
            self.transport.close()
        return True  # keep the connection open for the answers

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.held and not self._owed():
            self._write_refusal(*self.held)
        elif self.client_done and not self._owed():
            self.transport.close()
        else:
            self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn tells the latest request its client is gone; the one being answered is told
        too (its application may be waiting to hear it)."""
        super().connection_lost(exc)
        if self.running is not None:
            self._abandon(self.running)

    def shutdown(self) -> None:
        """The server stops: a held refusal still follows the answers before it (it closes the
        connection itself)."""
        if not self.held:
            super().shutdown()

    def _abandon(self, cycle: RequestResponseCycle) -> None:
        """The request of ``cycle`` is over unanswered: its function never runs, or its answer
        is dropped."""
        if not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.pipeline = deque(queued for queued in self.pipeline if queued[0] is not cycle)

    def refuse(self, status: int, message: str, own: RequestResponseCycle | None) -> None:
        """Answer a request the gateway never gets to answer, in JSON, and close: at once, or
        once the requests before it are answered. ``own``: its cycle, if its head was read (the
        gateway may have begun to answer it: then the answer is cut short, nothing added)."""
        log.info(json.dumps({"status": status, "refused": message}))
        if own is not None:
            self._abandon(own)
            if own.response_started:
                self.transport.close()
                return
        if self._owed():
            self.held = (status, message)
            self.flow.pause_reading()
            self._unset_keepalive_if_required()
        else:
            self._write_refusal(status, message)

    def _write_refusal(self, status: int, message: str) -> None:
        body = json.dumps({"message": message}).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
            + b"Content-Type: application/json\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n"
            + body
        )
        self.transport.close()


class OneSend:
    """The connection as a request's answer sees it: the answer's head waits for its body, so an
    answer leaves in one send (one system call, one packet), where uvicorn writes the two apart.

    The head is the first write once the answer has started (``100 Continue`` is written before);
    a body write always follows it, an empty one too, except for a HEAD request's answer, whose
    head leaves at once. A connection closed in between (the application failed) sends the head
    first, as it would have been."""

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self.cycle, self.transport = cycle, cycle.transport
        self.head: bytes | None = None
        self.started = False

    def write(self, data: bytes) -> None:
        if self.cycle.response_started and not self.started:
            self.started = True
            if self.cycle.scope["method"] != "HEAD":
                self.head = data
                return
        if self.head is not None:
            data, self.head = self.head + data, None
        self.transport.write(data)

    def close(self) -> None:
        if self.head is not None:
            self.transport.write(self.head)
            self.head = None
        self.transport.close()

    def __getattr__(self, name: str) -> object:  # the rest is the connection's own
        return getattr(self.transport, name)


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
