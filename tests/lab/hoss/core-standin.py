#!/usr/bin/env python3
"""A STAND-IN for the Hoss core service (container `server_core_1`) as hossadm and the
plans see it: GET /core/v1/discover, the only public endpoint of core (server/core/main.go
registers `discover` in the public v1 group; everything else needs a JWT), answering
{"alive", "dev", "version", "build", "services", "auth_service", "delete_delay_minutes"}
as server/core/pkg/api/discover.go does. The version is the server repository's VERSION
file (the Makefile builds core with VERSION=$(cat ./VERSION)), given as --version-file.
Every other path answers 404 (there is no /core/v1/health in the vendor's core).

Cannot model: the real API, JWT auth, object stores, the link to the database and search
(the real core also bootstraps namespaces in hoss_core at start; this one does not).
"""

import argparse
import http.server
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--version-file", required=True)
    ap.add_argument("--build", default="labbuild")
    a = ap.parse_args()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0].rstrip("/") == "/core/v1/discover":
                with open(a.version_file) as fh:
                    version = fh.read().strip()
                body = {"alive": "true", "dev": False, "version": version, "build": a.build,
                        "services": ["core", "auth", "sync"], "auth_service": "", "delete_delay_minutes": 0}
                status = 200
            else:
                body, status = {"error": "404 page not found"}, 404
            raw = (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, fmt, *args):
            print("core-standin:", fmt % args, flush=True)

    http.server.ThreadingHTTPServer(("0.0.0.0", a.port), H).serve_forever()


if __name__ == "__main__":
    main()
