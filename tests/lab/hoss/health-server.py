#!/usr/bin/env python3
"""A STAND-IN for the Hoss server as the restore plan sees it (there is no Hoss here).

It is not Hoss. `make up DETACH=true` (tests/lab/hoss/Makefile, itself a stand-in for the
server directory's Makefile) starts this in the background; it answers
GET /core/v1/health with 200 {"status": "ok"} the way the real core service's health check
does once the server is up, and 404 elsewhere. That is all hoss-restore's `server-up` step
needs. It writes its pid to --pidfile (the drill stops it from there) and exits by itself
after --lifetime seconds, so a drill killed with SIGKILL leaves nothing running for long.

Usage: health-server.py --port N --pidfile FILE [--lifetime SECONDS]
"""

import argparse
import http.server
import os
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] == "/core/v1/health":
            body = b'{"status": "ok"}\n'
            self.send_response(200)
        else:
            body = b'{"detail": "Not Found"}\n'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("health-server:", fmt % args, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--lifetime", type=float, default=900)
    a = ap.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    with open(a.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(a.pidfile + ".tmp", a.pidfile)
    threading.Timer(a.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
