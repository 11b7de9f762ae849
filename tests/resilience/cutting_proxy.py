"""A TCP proxy in front of Postgres that can lose an answer on purpose.

It reads the client's side of the Postgres wire protocol message by message. Armed, it waits for
the next message that ends a write (the simple-query `COMMIT` a transaction ends with, or the
`Sync` after an `Execute`, which commits a one-statement write; a lone `Sync` is sqlx's ping of a
connection going back to its pool), then either forwards it and cuts the connection before
Postgres's answer comes back (the write is applied, and the client cannot know), or cuts it
without forwarding (the write never reaches the database). It can then refuse new connections for
a while, so the client cannot ask the database what happened.

Only a ledger write counts: a statement that calls the grouped function or writes
`ledger_writes`, found by the text of each statement a connection runs (named prepared statements
are remembered from their `Parse`). The server's background work (the hold sweeper, the webhook
dispatcher) shares the pool, and its statements must not be mistaken for the write under test."""

import socket
import struct
import threading
import time

# What the statements of a ledger write contain, and nothing else the server sends does.
LEDGER_WRITES = (b"bank_apply_", b"ledger_writes")
SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


class CuttingProxy:
    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.armed = None  # (message kind, forward it?, seconds to refuse connections after)
        self.refuse_until = 0.0
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, on, forward, refuse_for=0.0):
        """`on`: "commit" or "sync"; `forward`: let that message reach Postgres before cutting."""
        with self.lock:
            self.cut.clear()
            self.armed = (on, forward, refuse_for)

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            if time.monotonic() < self.refuse_until:
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _client_to_server(self, client, server):
        buffer, started, executed = b"", False, False
        statements = Statements()
        try:
            while data := client.recv(65536):
                buffer += data
                while True:
                    message, buffer, started = self._next(buffer, started)
                    if message is None:
                        break
                    wrote = statements.read(message)
                    ends_a_write = self._ends_a_write(message, executed) if wrote else None
                    executed = message[:1] == b"E" or (executed and message[:1] != b"S")
                    if self._cuts_before(ends_a_write, server, client):
                        return
                    server.sendall(message)
                    if self._cuts_after(ends_a_write, server, client):
                        return
        except OSError:
            pass
        self._close(server, client)

    @staticmethod
    def _next(buffer, started):
        """The next whole message of `buffer`, the rest, and whether start-up is over."""
        if not started:
            if len(buffer) < 8:
                return None, buffer, started
            length, code = struct.unpack("!II", buffer[:8])
            if len(buffer) < length:
                return None, buffer, started
            return buffer[:length], buffer[length:], code not in (SSL_REQUEST, GSS_REQUEST)
        if len(buffer) < 5:
            return None, buffer, started
        length = struct.unpack("!I", buffer[1:5])[0]
        if len(buffer) < 1 + length:
            return None, buffer, started
        return buffer[:1 + length], buffer[1 + length:], started

    @staticmethod
    def _ends_a_write(message, executed):
        """"commit", "sync" or None: what this message is to the armed proxy."""
        if message[:1] == b"Q" and message[5:].lstrip().upper().startswith(b"COMMIT"):
            return "commit"
        if message[:1] == b"S" and executed:
            return "sync"
        return None

    def _cuts_before(self, ends_a_write, server, client):
        """Not forwarded: the database sees its client go away, and rolls back."""
        with self.lock:
            if self.armed is None or ends_a_write != self.armed[0] or self.armed[1]:
                return False
            self._fire()
        self._close(server, client)
        return True

    def _cuts_after(self, ends_a_write, server, client):
        """Forwarded: the client is cut off now; the server side stays open until the database
        has answered (so the write is done), and that answer goes nowhere."""
        with self.lock:
            if self.armed is None or ends_a_write != self.armed[0] or not self.armed[1]:
                return False
            self._fire()
        self._close(client)
        return True

    def _fire(self):
        """Caller holds the lock."""
        self.refuse_until = time.monotonic() + self.armed[2]
        self.armed = None
        self.cut.set()

    @staticmethod
    def _close(*ends):
        for end in ends:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


class Statements:
    """What one connection's client runs, message by message: whether a ledger write has been
    executed since the end of the last write (a `Sync` outside a transaction, or a `COMMIT`)."""

    def __init__(self):
        self.prepared = {}
        self.current = b""
        self.in_transaction = False
        self.wrote = False

    def read(self, message):
        """Whether a ledger write ran before this message, which may end it."""
        kind, body = message[:1], message[5:]
        wrote = self.wrote
        if kind == b"P":
            name, rest = body.split(b"\0", 1)
            self.current = rest.split(b"\0", 1)[0]
            self.prepared[name] = self.current
        elif kind == b"B":
            statement = body.split(b"\0", 2)[1]
            self.current = self.prepared.get(statement, self.current)
        elif kind == b"E":
            self.wrote = self.wrote or any(marker in self.current for marker in LEDGER_WRITES)
        elif kind == b"Q":
            text = body.lstrip().upper()
            if text.startswith(b"BEGIN"):
                self.in_transaction = True
            elif text.startswith((b"COMMIT", b"ROLLBACK")):
                self.in_transaction, self.wrote = False, False
            elif any(marker.upper() in text for marker in LEDGER_WRITES):
                self.wrote = True
        elif kind == b"S" and not self.in_transaction:
            self.wrote = False
        return wrote
