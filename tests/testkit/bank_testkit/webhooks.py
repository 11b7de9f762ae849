"""A webhook endpoint on 127.0.0.1 that keeps every request it is sent, and what its messages
say: which ledger rows and holds each one tells of."""

import http.server
import threading


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 500 while `failing` is set, or to its first `fail_first` requests, else 204."""

    # A dispatcher opens dozens of connections at once; the default backlog of 5 would drop
    # most, and each would wait a second for TCP to try again.
    request_queue_size = 128

    def __init__(self, fail_first=0):
        self.received = []  # (headers, body) of every request, in the order they came
        self.fail_first = fail_first
        self.failing = False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/bank-events"

    def requests(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.server.lock:
            self.server.received.append((dict(self.headers), body))
            fail = self.server.failing or len(self.server.received) <= self.server.fail_first
        self.send_response(500 if fail else 204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def subjects(message):
    """The ledger rows (`("row", id)`) or hold (`("hold", id)`) a verified message tells of."""
    data = message["data"]
    if message["type"] == "transfer.made":
        return {("row", data["from_transaction"]["id"]), ("row", data["to_transaction"]["id"])}
    if message["type"] == "transaction.posted":
        return {("row", data["id"])}
    return {("hold", data["id"])}
