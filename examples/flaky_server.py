"""A tiny HTTP server that fails the first N requests, then succeeds (stdlib only).

It stands in for a flaky upstream API in ``retry_flaky_http.yaml``: the first ``--fail``
requests get ``503 Service Unavailable``, every later one ``200`` with a JSON body that
says how many requests it took. Run it, then pass its URL to the workflow::

    python examples/flaky_server.py --fail 2 --port 8765 &
    FLOWPLANE_ALLOW_HOSTS=127.0.0.1 flowplane run examples/retry_flaky_http.yaml \\
        --input '{"url": "http://127.0.0.1:8765/quote"}'

Tests use :class:`FlakyServer` in a thread.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class FlakyServer:
    """An HTTP server on 127.0.0.1 that answers 503 to the first ``fail_times`` requests.

    Args:
        fail_times: how many requests fail before the server recovers.
        port: the port to bind (0 picks a free one; see :attr:`url`).
    """

    def __init__(self, fail_times: int = 2, port: int = 0) -> None:
        self.fail_times = fail_times
        self.requests = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                    number = server.requests
                if number <= server.fail_times:
                    self._reply(503, {"error": "temporarily unavailable", "request": number})
                else:
                    body = {
                        "ok": True,
                        "path": self.path,
                        "request": number,
                        "failed_before": server.fail_times,
                        "quote": {"symbol": "FLOW", "price": 42.5},
                    }
                    self._reply(200, body)

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test and terminal output quiet

        return Handler

    def start(self) -> FlakyServer:
        """Serve in a daemon thread; return ``self``."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FlakyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """Run the server in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail", type=int, default=2, help="requests that fail first")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any)")
    args = parser.parse_args()
    server = FlakyServer(args.fail, args.port)
    print(f"flaky server on {server.url} (failing the first {args.fail} requests)", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
