"""The gateway's HTTP/1.1 connections: uvicorn's h11 protocol, with the gateway's refusals.

h11 reads the requests (framing, chunked bodies, ``Expect: 100-continue``, keep-alive) and
refuses what it cannot read; uvicorn answers those refusals with a plain-text 400. The gateway's
clients get what its other errors look like instead: JSON, the status the refusal deserves (414,
431, 501 or 400) and a message saying why (`refusal`). Two bounds besides, which uvicorn leaves
out:

- a request's head is fed to h11 a slice at a time, so h11's bound on it (`MAX_HEAD`) holds
  however the head arrived (one read of a whole 70 KB head would otherwise be parsed whole);
- a connection that sends nothing for ``timeout_keep_alive`` seconds since it opened, or in the
  middle of a request, is closed (uvicorn times out only the wait between two requests).

And a client that shuts its side down once its request is sent (a half-close) still gets the
answer, as from any HTTP/1.1 server (uvicorn would close the connection at once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from http import HTTPStatus

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: The largest request head (request line and headers) read: past it, 414 or 431.
MAX_HEAD = 64 * 1024
SLICE = 1024  # how much of a head h11 gets at a time: MAX_HEAD holds to within this
log = logging.getLogger("gateway")


class GatewayProtocol(H11Protocol):
    """One client connection (`uvicorn.Config`'s ``http``, with ``h11_max_incomplete_event_size``
    set to `MAX_HEAD`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_done = False  # the client has shut its side down: it sends nothing more
        self._await_client()

    def eof_received(self) -> bool:
        """The client sends nothing more: answer the request it sent whole (or whose answer
        needs no more of it), then close; with none begun, close now."""
        self.client_done = True
        if self.conn.their_state is h11.IDLE:
            self.transport.close()
        return True  # keep the connection open for the answer

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.client_done and self.conn.their_state is not h11.DONE:
            self.transport.close()  # no other whole request from it to answer

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view) > SLICE and self._reading_head():
            super().data_received(view[:SLICE])
            view = view[SLICE:]
        if not self.transport.is_closing():
            super().data_received(view)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self._await_client()  # a request is begun, or none: the client owes the next byte

    def _reading_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _await_client(self) -> None:
        """Close the connection unless the client sends something within the idle timeout."""
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.transport.close
        )

    def send_400_response(self, msg: str) -> None:
        """Answer what h11 refused, in JSON, and close. uvicorn calls this while it handles h11's
        error, which is how the error is known here."""
        status, message = refusal(sys.exception(), self.conn.trailing_data[0])
        log.info(json.dumps({"status": status, "refused": message}))
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the request is over: its function never runs
            self.cycle.message_event.set()
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # else an answer had begun
            body = json.dumps({"message": message}).encode()
            headers = [
                (b"Content-Type", b"application/json"),
                (b"Content-Length", str(len(body)).encode()),
                (b"Connection", b"close"),
            ]
            reason = HTTPStatus(status).phrase.encode()
            self.transport.write(
                self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
                + self.conn.send(h11.Data(data=body))
                + self.conn.send(h11.EndOfMessage())
            )
        self.transport.close()


def refusal(error: BaseException | None, pending: bytes) -> tuple[int, str]:
    """The status and message for h11's ``error``; ``pending``: what it held unread."""
    text = str(error or "not an HTTP/1.1 request")
    hint = getattr(error, "error_status_hint", 400)
    if hint == 431:  # the head outgrew MAX_HEAD before it ended
        if b"\n" not in pending:
            return 414, f"request line over {MAX_HEAD} bytes"
        return 431, f"request headers over {MAX_HEAD} bytes in all"
    if hint == 501:
        return 501, "a Transfer-Encoding other than chunked is not supported"
    if "chunk" in text:
        return 400, "malformed chunked body"
    if "conflicting Content-Length" in text:
        return 400, "Content-Length given twice, differently"
    if "Content-Length" in text:
        return 400, "the Content-Length header is not a length"
    return 400, f"not an HTTP/1.1 request: {text.partition(': bytearray')[0]}"
