"""An HTTP relay in front of a real ClickHouse server, for fault injection
in tests: answers lost before or after the request reached the server,
answers rewritten (an exception appended to a 200), and answers made up
(a 429, a streamed answer cut short).  Loopback only."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FORWARD = "forward"
DROP = "drop"  # the request never reaches the server; no answer
FORWARD_THEN_DROP = "forward-then-drop"  # the server acts; the client hears nothing


class Answer:
    """An answer the relay sends itself.  With `cut`, the body goes out as
    one chunk of a chunked answer and the connection is then closed without
    the final empty chunk: what a ClickHouse server does when a query fails
    after its answer started streaming."""

    def __init__(self, status=200, body=b"", headers=(), cut=False):
        self.status, self.body, self.headers, self.cut = status, body, list(headers), cut


class Relay:
    """`decide(path, body)` says what to do with each POST: FORWARD, DROP,
    FORWARD_THEN_DROP, an Answer (the server never sees the request), or a
    function that rewrites a 200 answer: it gets the body and returns a new
    body, or an Answer (whose headers are added to the server's)."""

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
                if isinstance(action, Answer):
                    self.answer(action, [])
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
                answer = Answer(resp.status, data)
                if callable(action) and resp.status == 200:
                    answer = action(data)
                    if not isinstance(answer, Answer):
                        answer = Answer(resp.status, answer)
                self.answer(answer, resp.getheaders())

            def answer(self, answer, upstream_headers):
                self.send_response(answer.status)
                for k, v in list(upstream_headers) + answer.headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive"):
                        self.send_header(k, v)
                if answer.cut:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    if answer.body:  # an empty chunk would end the answer properly
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(answer.body), answer.body))
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
