#!/usr/bin/env python3
"""A real Git smart-HTTP server for hawser's tests (Python stdlib only).

Serves the bare repositories under --root through git's own CGI program,
`git http-backend`, so every exchange (protocol v2 and v0, fetch and push) is
answered by real git. Optionally also serves static files under /files/ with
ETag and Last-Modified, so tarball sources can be tested against conditional
requests.

The first line on stdout is `PORT=<n>`: the port actually bound (useful with
--port 0). Everything else goes to stderr. See tests/env/README-gitserver.md.
"""

import argparse
import base64
import email.utils
import errno
import hashlib
import hmac
import http.server
import mimetypes
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

# Readiness probe; answered without auth and never written to the --log file,
# so request logs only show what a client under test sent.
HEALTH_PATH = "/_health"
FILES_PREFIX = "/files/"
# Headers that CGI passes in dedicated variables, that must not reach the
# program (credentials, httpoxy), or that this server already decoded.
SKIPPED_HEADERS = {"content-type", "content-length", "authorization", "proxy", "transfer-encoding"}
COPY_CHUNK = 64 * 1024


def find_backend():
    try:
        exec_path = subprocess.run(
            ["git", "--exec-path"], check=True, capture_output=True, text=True
        ).stdout.strip()
        candidate = os.path.join(exec_path, "git-http-backend")
        if os.access(candidate, os.X_OK):
            return candidate
    except (OSError, subprocess.CalledProcessError):
        pass
    return "/usr/lib/git-core/git-http-backend"


class CountingReader:
    """Wraps the connection's read side and counts the bytes consumed."""

    def __init__(self, inner):
        self.inner = inner
        self.count = 0

    def readline(self, limit=-1):
        line = self.inner.readline(limit)
        self.count += len(line)
        return line

    def read(self, n=-1):
        data = self.inner.read(n)
        self.count += len(data)
        return data

    @property
    def closed(self):
        return self.inner.closed

    def close(self):
        self.inner.close()


class CountingWriter:
    """Wraps the connection's write side and counts the bytes sent.

    The most recent write is held back until flush(), which the handler calls
    once the response is complete: the log line is written before the
    client can have the last byte, so a client that got its answer always
    finds its request in the log."""

    def __init__(self, inner):
        self.inner = inner
        self.count = 0
        self.pending = b""
        self.before_flush = None

    @property
    def closed(self):
        return self.inner.closed

    def write(self, data):
        if self.pending:
            self.inner.write(self.pending)
        self.pending = bytes(data)
        self.count += len(data)
        return len(data)

    def send_pending(self):
        if self.pending:
            pending, self.pending = self.pending, b""
            self.inner.write(pending)

    def flush(self):
        if self.before_flush is not None:
            self.before_flush()
        self.send_pending()
        self.inner.flush()

    def close(self):
        self.inner.close()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(self, address, options):
        self.options = options
        self.log_lock = threading.Lock()
        self.throttle_lock = threading.Lock()
        self.throttled_until = None
        super().__init__(address, Handler)  # binds; may raise EADDRINUSE
        self.log_file = open(options.log, "a", encoding="utf-8") if options.log else None

    def throttle_wait(self):
        """Seconds a client must still wait (Retry-After), or None. The window opens
        at the first request after --throttle-file appears (its content: seconds),
        and the file is consumed; until the window closes every request gets 429."""
        path = self.options.throttle_file
        if path is None:
            return None
        with self.throttle_lock:
            now = time.monotonic()
            if self.throttled_until is not None and now < self.throttled_until:
                return self.throttled_until - now
            self.throttled_until = None
            try:
                with open(path, encoding="utf-8") as f:
                    seconds = float(f.read().strip())
                os.unlink(path)
            except (OSError, ValueError):
                return None
            self.throttled_until = now + seconds
            return seconds

    def write_log(self, line):
        if self.log_file is None:
            return
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def handle_error(self, request, client_address):
        # Clients hanging up or failing a TLS handshake are normal in tests
        # (for instance a client that rejects the certificate).
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked responses
    server_version = "hawser-test-gitserver/1"
    timeout = 120  # idle keep-alive connections give their thread back

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            # The handshake runs here, in the connection's own thread, so a
            # stalled client cannot block accept().
            self.request.settimeout(30)
            self.request.do_handshake()
        super().setup()
        self.rfile = CountingReader(self.rfile)
        self.wfile = CountingWriter(self.wfile)

    def log_message(self, format, *args):  # noqa: A002 (stdlib signature)
        if self.server.options.verbose:
            super().log_message(format, *args)

    def handle_one_request(self):
        self.rfile.count = 0
        self.wfile.count = 0
        self.status = None
        self.logged = False
        self.wfile.before_flush = self.log_request_line
        try:
            super().handle_one_request()
        finally:
            self.log_request_line()
            self.wfile.before_flush = None
            try:
                self.wfile.flush()
            except OSError:
                self.close_connection = True

    def handle_expect_100(self):
        # The interim 100 must reach the client now: it waits for it before
        # sending the body we are about to read.
        result = super().handle_expect_100()
        self.wfile.send_pending()
        return result

    def log_request_line(self):
        """Writes this request's log line once, when its response is done."""
        path = getattr(self, "path", "-")
        if self.logged or self.status is None or path == HEALTH_PATH:
            return
        self.logged = True
        self.server.write_log(
            f"{self.command or '-'} {path} {self.status} {self.rfile.count} {self.wfile.count}"
        )

    def send_response(self, code, message=None):
        self.status = code
        super().send_response(code, message)

    # ---- request plumbing -------------------------------------------------

    def read_body(self):
        """Reads the whole request body (de-chunking if needed); raw bytes,
        still gzip-encoded if the client sent Content-Encoding: gzip."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ConnectionError("eof in chunked body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def split_path(self):
        parts = urllib.parse.urlsplit(self.path)
        return urllib.parse.unquote(parts.path), parts.query

    def authorized_user(self):
        """None when auth is off, the user name when the credentials match,
        False when they are missing or wrong."""
        expected = self.server.options.basic_auth
        if expected is None:
            return None
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return False
        return given.split(":", 1)[0]

    def send_simple(self, code, text, extra_headers=()):
        body = text.encode()
        self.send_response(code)
        for name, value in extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ---- methods ----------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        try:
            self.route()
        except ValueError as err:  # malformed Content-Length or chunk size
            self.close_connection = True
            if not self.wfile.count:
                self.send_simple(400, f"bad request: {err}\n")

    def route(self):
        path, query = self.split_path()
        if path == HEALTH_PATH:
            self.read_body()
            self.send_simple(200, "ok\n")
            return
        wait = self.server.throttle_wait()
        if wait is not None:
            self.read_body()
            retry_after = str(max(1, int(wait + 0.999)))
            self.send_simple(429, "too many requests\n", [("Retry-After", retry_after)])
            return
        user = self.authorized_user()
        if user is False:
            self.read_body()  # drain, so the connection can be reused
            self.send_simple(
                401,
                "authentication required\n",
                [("WWW-Authenticate", 'Basic realm="hawser-test", charset="UTF-8"')],
            )
            return
        if self.server.options.files and path.startswith(FILES_PREFIX):
            self.read_body()
            self.serve_file(path[len(FILES_PREFIX):])
            return
        self.run_backend(path, query, user)

    # ---- static files -----------------------------------------------------

    def serve_file(self, rel):
        if self.command not in ("GET", "HEAD"):
            self.send_simple(405, "method not allowed\n", [("Allow", "GET, HEAD")])
            return
        root = os.path.realpath(self.server.options.files)
        full = os.path.realpath(os.path.join(root, rel))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            self.send_simple(404, "not found\n")
            return
        with open(full, "rb") as f:
            data = f.read()
        mtime = os.stat(full).st_mtime
        etag = '"' + hashlib.sha256(data).hexdigest() + '"'
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        validators = [("ETag", etag), ("Last-Modified", last_modified)]
        if self.not_modified(etag, mtime):
            self.send_response(304)
            for name, value in validators:
                self.send_header(name, value)
            self.end_headers()
            return
        self.send_response(200)
        for name, value in validators:
            self.send_header(name, value)
        content_type = mimetypes.guess_type(full)[0] or "application/octet-stream"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def not_modified(self, etag, mtime):
        # RFC 9110 13.1.2/13.2.2: If-None-Match (weak comparison) wins over
        # If-Modified-Since.
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
        ims = self.headers.get("If-Modified-Since")
        if ims is not None:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            return since is not None and int(mtime) <= since.timestamp()
        return False

    # ---- git http-backend -------------------------------------------------

    def cgi_env(self, path, query, user, body):
        options = self.server.options
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": self.server_version,
            "SERVER_PROTOCOL": self.request_version,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROJECT_ROOT": options.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            # Hermetic: no system or user config changes what the server does.
            "GIT_CONFIG_NOSYSTEM": "1",
            # Pushes are allowed on every repository, with or without auth.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
        }
        for name in ("GIT_TRACE", "GIT_TRACE_PACKET", "GIT_TRACE_CURL"):
            if name in os.environ:
                env[name] = os.environ[name]
        if user:
            env["REMOTE_USER"] = user
            env["AUTH_TYPE"] = "Basic"
        if self.command == "POST" or body:
            env["CONTENT_LENGTH"] = str(len(body))
        if "Content-Type" in self.headers:
            env["CONTENT_TYPE"] = self.headers["Content-Type"]
        for name in set(self.headers.keys()):
            lower = name.lower()
            if lower in SKIPPED_HEADERS:
                continue
            if lower == "git-protocol" and options.no_v2:
                continue  # the backend then answers in protocol v0
            key = "HTTP_" + name.upper().replace("-", "_")
            env[key] = ", ".join(self.headers.get_all(name))
        return env

    def run_backend(self, path, query, user):
        body = self.read_body()
        env = self.cgi_env(path, query, user, body)
        try:
            proc = subprocess.Popen(
                [self.server.options.backend],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sys.stderr,
            )
        except OSError as err:
            self.send_simple(500, f"cannot run {self.server.options.backend}: {err}\n")
            return

        def feed():
            # A thread, so a backend that answers before it read everything
            # cannot deadlock against us.
            try:
                proc.stdin.write(body)
            except (BrokenPipeError, OSError):
                pass
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            self.relay_cgi_output(proc.stdout)
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True
            proc.kill()
        finally:
            feeder.join()
            proc.stdout.close()
            proc.wait()

    def relay_cgi_output(self, out):
        status, reason, headers = 200, None, []
        while True:
            line = out.readline(65537)
            if not line:
                break  # EOF in the headers: treat like an empty body
            line = line.rstrip(b"\r\n")
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip(), value.strip()
            if name.lower() == "status":
                code, _, reason = value.partition(" ")
                status = int(code)
            else:
                headers.append((name, value))
        self.send_response(status, reason or None)
        has_length = any(n.lower() == "content-length" for n, _ in headers)
        bodiless = self.command == "HEAD" or status in (204, 304)
        chunked = not has_length and not bodiless and self.request_version == "HTTP/1.1"
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not has_length and not bodiless:
            self.close_connection = True  # HTTP/1.0: the body ends at close
            self.send_header("Connection", "close")
        self.end_headers()
        if bodiless:
            while out.read1(COPY_CHUNK):
                pass  # let the backend finish writing
            return
        while True:
            data = out.read1(COPY_CHUNK)
            if not data:
                break
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="directory holding the bare repositories")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    p.add_argument("--basic-auth", metavar="USER:PASS", help="require these credentials")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--files", metavar="DIR", help="also serve DIR under /files/")
    p.add_argument("--no-v2", action="store_true", help="drop Git-Protocol: speak protocol v0 only")
    p.add_argument("--log", metavar="FILE", help="append one line per request to FILE")
    p.add_argument(
        "--throttle-file",
        metavar="FILE",
        help="when FILE appears (holding SECONDS), answer 429 with Retry-After for SECONDS",
    )
    p.add_argument("--backend", default=None, help="path of git-http-backend")
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    p.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when stdin reaches EOF (the parent holding the pipe died)",
    )
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.basic_auth is not None and ":" not in args.basic_auth:
        p.error("--basic-auth wants USER:PASS")
    args.root = os.path.realpath(args.root)
    if not os.path.isdir(args.root):
        p.error(f"--root {args.root} is not a directory")
    if args.files is not None:
        args.files = os.path.realpath(args.files)
    args.backend = args.backend or find_backend()
    return args


def bind(options):
    """Binds the listening socket. A fixed port (a restart after a simulated
    outage) may still be held for a moment by the previous process: retry
    until a deadline instead of failing the test."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Server(("127.0.0.1", options.port), options)
        except OSError as err:
            if err.errno != errno.EADDRINUSE or options.port == 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def exit_at_stdin_eof():
    """A test process killed outright (SIGKILL, a timeout) cannot run its
    destructors; the kernel still closes its end of our stdin, and we follow
    it instead of lingering as an orphan."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main(argv):
    options = parse_args(argv)
    server = bind(options)
    if options.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(options.tls_cert, options.tls_key)
        server.socket = ctx.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if options.exit_with_stdin:
        threading.Thread(target=exit_at_stdin_eof, daemon=True).start()
    print(f"PORT={server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
