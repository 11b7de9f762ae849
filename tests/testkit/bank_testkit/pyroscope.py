"""Where the API's CPU profiles can be pushed without a Pyroscope server: an HTTP endpoint on
Pyroscope's push path that answers 200 and counts the pushes and their bytes. Only for measuring
what pushing costs the API; tests/profiles decodes what is pushed."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUSH_PATH = "/push.v1.PusherService/Push"


class PushSink:
    def __init__(self):
        self.pushes = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == PUSH_PATH:
                    sink.pushes += 1
                    sink.bytes += len(body)
                self.send_response(200 if self.path == PUSH_PATH else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
