#!/usr/bin/env python3
"""ClickHouse's HTTP interface over a persistent chdb session, so salesd's
tests can run against the current ClickHouse engine as well as Debian's
18.16 server.

The adapter only carries bytes: the statement (URL `query` and/or body,
joined by a newline as the server does) goes to the chdb engine unchanged,
and the engine's output or exception text comes back unchanged.  What the
adapter does itself is what the server's HTTP layer does: check the
credentials it was started with, select the request's database (`USE`, run
by the engine), apply per-request settings (`SET`, run by the engine, then
restored), and map exception codes to HTTP statuses.

It serves one request at a time on 127.0.0.1 (the chdb session is not
shared between threads) and closes every connection after its answer, so a
client that keeps a connection open cannot starve the others."""

import argparse
import base64
import gzip
import hmac
import http.server
import json
import os
import re
import signal
import sys
import uuid
import zlib
from urllib.parse import parse_qsl, urlsplit

# URL parameters that the server's HTTP layer consumes itself; every other
# parameter (except param_*) is a setting for the query.
HTTP_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id",
    "session_id", "session_timeout", "session_check", "close_session", "compress", "decompress",
    "buffer_size", "wait_end_of_query", "stacktrace", "role", "client_protocol_version",
}

# Exception names by HTTP status, as the current server maps them.
_STATUS_BY_NAME = {}
for _status, _names in (
    (401, "REQUIRED_PASSWORD"),
    (403, "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED"),
    (
        400,
        "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE "
        "CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER "
        "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 "
        "CANNOT_PARSE_INPUT_ASSERTION_FAILED CANNOT_PARSE_UUID DUPLICATE_COLUMN ILLEGAL_COLUMN "
        "UNKNOWN_ELEMENT_IN_AST UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST "
        "UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH "
        "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    ),
    (
        404,
        "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE "
        "UNKNOWN_DATABASE UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION "
        "UNKNOWN_FORMAT UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE",
    ),
    (413, "QUERY_IS_TOO_LARGE"),
    (501, "NOT_IMPLEMENTED"),
    (503, "SOCKET_TIMEOUT CANNOT_OPEN_FILE CANNOT_SCHEDULE_TASK"),
    (411, "HTTP_LENGTH_REQUIRED"),
    (408, "TIMEOUT_EXCEEDED"),
    (415, "UNSUPPORTED_MEDIA_TYPE"),
):
    for _name in _names.split():
        _STATUS_BY_NAME[_name] = _status

_CODE = re.compile(rb"Code: (\d+)[.,]")

CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class ServerError(Exception):
    """An error the HTTP layer raises itself, in the server's words."""

    def __init__(self, code, name, message):
        super().__init__(message)
        self.code = code
        self.name = name
        self.text = f"Code: {code}. DB::Exception: {message}. ({name})"


class Engine:
    """The chdb session plus the few statements the HTTP layer needs."""

    def __init__(self, path):
        from chdb import session

        self.session = session.Session(str(path))
        self.version = self.run(b"SELECT version()").bytes().decode().strip()
        self._names = {}

    def run(self, sql, fmt="TabSeparated", params=None):
        return self.session.query(sql, fmt, params=params) if params else self.session.query(sql, fmt)

    def error_name(self, code):
        if code not in self._names:
            try:
                out = self.run(f"SELECT errorCodeToName({int(code)})".encode()).bytes()
                self._names[code] = out.decode().strip()
            except Exception:
                self._names[code] = ""
        return self._names[code]

    def close(self):
        try:
            self.session.close()
        except Exception:
            pass


def sql_string(value):
    """A ClickHouse string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + escaped + "'"


def sql_ident(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb_http"
    sys_version = ""
    timeout = 120  # a stalled client cannot hold the only thread forever

    engine = None  # set by main()
    users = {}

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def do_HEAD(self):
        self.serve()

    def log_message(self, fmt, *args):
        # Never the query string: it may carry a password.
        sys.stderr.write(f"chdb_http: {self.command} {urlsplit(self.path).path} {fmt % args}\n")

    def log_request(self, code="-", size="-"):
        self.log_message("%s", code)

    # ---- plumbing -------------------------------------------------------

    def reply(self, status, body, headers=None):
        self.close_connection = True
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_error(self, code, name, text, query_id):
        status = _STATUS_BY_NAME.get(name, 500)
        body = text.rstrip(b"\n") + b"\n"
        self.reply(
            status,
            body,
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(code),
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Server-Display-Name": "chdb_http",
            },
        )

    def read_body(self):
        if self.command not in ("POST", "PUT"):
            return b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise ServerError(
                48, "NOT_IMPLEMENTED", f"Content-Encoding {encoding!r} is not supported by the chdb adapter"
            )
        return body

    def authenticate(self, params):
        """The user name, or ServerError as the server would raise it."""
        header_user = self.headers.get("X-ClickHouse-User")
        header_key = self.headers.get("X-ClickHouse-Key")
        basic = self.headers.get("Authorization", "")
        url_creds = "user" in params or "password" in params
        methods = sum(
            (header_user is not None or header_key is not None, basic.lower().startswith("basic "), url_creds)
        )
        if methods > 1:
            raise ServerError(
                516,
                "AUTHENTICATION_FAILED",
                "Invalid authentication: it is not allowed to use more than one authentication method "
                "(Authorization header, X-ClickHouse headers, URL parameters) at once",
            )
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise ServerError(516, "AUTHENTICATION_FAILED", "Invalid Authorization header") from None
            user, _, password = decoded.partition(":")
        elif header_user is not None or header_key is not None:
            user, password = header_user or "default", header_key or ""
        else:
            user, password = params.get("user") or "default", params.get("password", "")
        expected = self.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise ServerError(
                516,
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
            )
        return user

    # ---- one request ----------------------------------------------------

    def serve(self):
        query_id = str(uuid.uuid4())
        url = urlsplit(self.path)
        pairs = parse_qsl(url.query, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")
        params = dict(pairs)
        if url.path == "/ping":
            return self.reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
        try:
            body = self.read_body()
            if url.path == "/" and "query" not in params and not body:
                return self.reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            self.authenticate(params)
            if params.get("compress") == "1" or params.get("decompress") == "1":
                raise ServerError(
                    48, "NOT_IMPLEMENTED", "ClickHouse's compressed HTTP framing is not supported by the chdb adapter"
                )
        except ServerError as err:
            return self.reply_error(err.code, err.name, err.text.encode(), query_id)

        query = params.get("query", "").encode("utf-8", "surrogateescape")
        sql = query + b"\n" + body if query and body else query or body
        database = params.get("database") or self.headers.get("X-ClickHouse-Database") or "default"
        fmt = params.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
        qparams = {k[6:]: v for k, v in pairs if k.startswith("param_")}
        settings = [(k, v) for k, v in pairs if k not in HTTP_PARAMS and not k.startswith("param_")]

        engine = self.engine
        restore = []
        try:
            engine.run(f"USE {sql_ident(database)}".encode())
            if settings:
                names = ", ".join(sql_string(k) for k, _ in settings)
                out = engine.run(f"SELECT name, value, changed FROM system.settings WHERE name IN ({names})".encode())
                before = {}
                for line in out.bytes().decode().splitlines():
                    name, value, changed = line.split("\t")
                    before[name] = (value, changed == "1")
                for k, v in settings:
                    engine.run(f"SET {sql_ident(k)} = {sql_string(v)}".encode())
                    restore.append((k, before.get(k)))
            result = engine.run(sql, fmt, qparams or None)
            out = result.bytes()
            summary = json.dumps(
                {
                    "read_rows": str(result.rows_read()),
                    "read_bytes": str(result.bytes_read()),
                    "written_rows": str(result.rows_written()),
                    "written_bytes": str(result.bytes_written()),
                }
            )
        except Exception as exc:
            text = str(exc).encode("utf-8", "replace")
            m = _CODE.search(text)
            code = int(m.group(1)) if m else 1001
            name = engine.error_name(code) if m else "STD_EXCEPTION"
            if not m:
                text = f"Code: 1001. DB::Exception: {exc}. (STD_EXCEPTION)".encode("utf-8", "replace")
            self.restore_settings(restore)
            return self.reply_error(code, name, text, query_id)
        self.restore_settings(restore)
        self.reply(
            200,
            out,
            {
                "Content-Type": CONTENT_TYPES.get(fmt, "text/plain; charset=UTF-8"),
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Summary": summary,
                "X-ClickHouse-Server-Display-Name": "chdb_http",
            },
        )

    def restore_settings(self, restore):
        """Per-request settings must not leak into the next request, as
        they would not on a server without sessions."""
        for name, before in reversed(restore):
            if before is not None and before[1]:
                stmt = f"SET {sql_ident(name)} = {sql_string(before[0])}"
            else:
                stmt = f"SET {sql_ident(name)} = DEFAULT"
            try:
                self.engine.run(stmt.encode())
            except Exception as exc:
                sys.stderr.write(f"chdb_http: cannot restore setting {name}: {exc}\n")


def load_users(path):
    users = {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line:
                name, _, password = line.partition(":")
                users[name] = password
    return users


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", required=True, help="chdb session directory (created if missing)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--users-file", required=True, help='lines "name:password"; an empty password allows none')
    args = ap.parse_args(argv)

    Handler.users = load_users(args.users_file)
    Handler.engine = Engine(args.path)
    httpd = http.server.HTTPServer(("127.0.0.1", args.port), Handler)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    port = httpd.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"chdb_http: chdb {Handler.engine.version} on 127.0.0.1:{port}\n")
    sys.stderr.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        Handler.engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
