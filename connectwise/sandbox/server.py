"""Serving the sandbox over a socket: a threaded ``wsgiref`` server that can reset connections on purpose.

Connections are kept alive (HTTP/1.1), as ConnectWise's servers do: a client sends its next request on the same
connection instead of opening one (and the sandbox starting a thread) per request. A request with a body, a
reset, or a client that says ``Connection: close`` ends its connection.

``make_server(app, host, port)`` builds it (``port=0`` picks a free port); ``serve_in_thread`` runs one in a
background thread for tests (``with serve_in_thread(app) as url: ...``).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .app import SandboxApp, SandboxReset


class _ServerHandler(ServerHandler):
    reset = False
    http_version = "1.1"  # every answer has a Content-Length (SandboxApp._send): the connection can stay open

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        if self.request_handler.close_connection:
            self.headers["Connection"] = "close"  # the client learns it now, not on its next request

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], SandboxReset):
            self.reset = True  # write nothing: the connection is dropped by the request handler
            return
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as web servers set it: wsgiref writes the status and headers, then the body, in two sends. On a
    # kept-alive connection Nagle's algorithm holds a body shorter than one segment until the client acknowledges
    # the headers, and the client delays that acknowledgement (40 ms on Linux): every answer after a connection's
    # first would wait 40 ms that no ConnectWise server adds.
    disable_nagle_algorithm = True
    timeout = 60  # an idle kept-alive connection is closed after this (seconds)

    def handle(self) -> None:  # BaseHTTPRequestHandler.handle: requests until the connection is to close
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:  # WSGIRequestHandler.handle with our ServerHandler, one request
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():  # also decides close_connection from the version and Connection header
            self.close_connection = True
            return
        if self.headers.get("Content-Length", "0") not in ("", "0") or self.headers.get("Transfer-Encoding"):
            self.close_connection = (
                True  # the app may not read all of a body: never read past it as a request
            )
        handler = _ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        handler.run(self.server.get_app())
        if handler.reset:
            self.close_connection = True
            self.server.mark_reset(self.connection)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        if self.server.verbose:
            super().log_message(format, *args)


class SandboxServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], verbose: bool = False) -> None:
        self.verbose = verbose
        self._resets: set[socket.socket] = set()
        self._resets_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def mark_reset(self, sock: socket.socket) -> None:
        # SO_LINGER on with a zero timeout: close() sends an RST instead of a FIN ("connection reset by peer").
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._resets_lock:
            self._resets.add(sock)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._resets_lock:
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            request.close()  # no shutdown(SHUT_WR) first: that would send a FIN before the RST
            return
        super().shutdown_request(request)


def make_server(
    app: SandboxApp, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
) -> SandboxServer:
    server = SandboxServer((host, port), verbose=verbose)
    server.set_app(app)
    return server


@contextlib.contextmanager
def serve_in_thread(
    app: SandboxApp, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Serve ``app`` from a daemon thread; yields the base URL (``http://127.0.0.1:PORT``).

    With ``ssl_context`` (a server-side context holding a certificate) it serves HTTPS and yields
    ``https://...``: tests of how the product names certificate problems (issue 17) use it.
    """
    server = make_server(app, host, port)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"{'https' if ssl_context is not None else 'http'}://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
