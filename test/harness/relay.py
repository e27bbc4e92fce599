"""An HTTP relay in front of a real ClickHouse server, for fault injection
in tests: answers lost before or after the request reached the server, and
answers rewritten (an exception appended to a 200).  Loopback only."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FORWARD = "forward"
DROP = "drop"  # the request never reaches the server; no answer
FORWARD_THEN_DROP = "forward-then-drop"  # the server acts; the client hears nothing


class Relay:
    """`decide(path, body)` says what to do with each POST: FORWARD, DROP,
    FORWARD_THEN_DROP, or a function that rewrites a 200 answer's body."""

    def __init__(self, upstream_url, decide):
        target = urlsplit(upstream_url)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = decide(self.path, body)
                if action == DROP:
                    self.close_connection = True
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if action == FORWARD_THEN_DROP:
                    self.close_connection = True
                    return
                if callable(action) and resp.status == 200:
                    data = action(data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
