#!/usr/bin/env python3
"""A STAND-IN for the Elasticsearch master's HTTP API as the StackState restore plan uses it
(there is no Elasticsearch here). It is not Elasticsearch. It answers:
  GET    /_cat/indices?format=json   the indices, in Elasticsearch's JSON shape
  DELETE /INDEX                      200 {"acknowledged":true}, or 404 index_not_found_exception
  PUT    /INDEX                      creates INDEX (the restore job stand-in's "restore");
                                     400 resource_already_exists_exception if it exists, as a
                                     real snapshot restore refuses to overwrite an open index
Every request is appended to --log as "METHOD PATH"; the indices live in --state (JSON:
{"INDEX": {"docs.count": "N", ...}}) so the drill can read them. Exits by itself after
--lifetime seconds.
"""

import argparse
import http.server
import json
import os
import threading
import urllib.parse

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=900)
    a = ap.parse_args()

    def load():
        with open(a.state) as f:
            return json.load(f)

    def save(state):
        with open(a.state + ".tmp", "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        os.replace(a.state + ".tmp", a.state)

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method):
            url = urllib.parse.urlparse(self.path)
            with LOCK:
                with open(a.log, "a") as log:
                    log.write(f"{method} {url.path}\n")
                state = load()
                name = url.path.strip("/")
                if method == "GET" and url.path == "/_cat/indices":
                    return self.answer(200, [
                        {"health": "green", "status": "open", "index": i, "pri": "1", "rep": "0",
                         "docs.count": v.get("docs.count", "0"), "store.size": "1kb"}
                        for i, v in sorted(state.items())])
                if method == "DELETE" and name and "/" not in name:
                    if name not in state:
                        return self.answer(404, {"error": {"type": "index_not_found_exception",
                                                           "reason": f"no such index [{name}]"},
                                                 "status": 404})
                    del state[name]
                    save(state)
                    return self.answer(200, {"acknowledged": True})
                if method == "PUT" and name and "/" not in name:
                    if name in state:
                        return self.answer(400, {"error": {
                            "type": "resource_already_exists_exception",
                            "reason": f"index [{name}] already exists"}, "status": 400})
                    q = urllib.parse.parse_qs(url.query)
                    state[name] = {"docs.count": "100", "restored_from": q.get("restored_from", [""])[0]}
                    save(state)
                    return self.answer(200, {"acknowledged": True, "index": name})
                return self.answer(400, {"error": f"elasticsearch stand-in: {method} {url.path} "
                                                  "is not answered by this stand-in"})

        def do_GET(self):
            self.handle_any("GET")

        def do_DELETE(self):
            self.handle_any("DELETE")

        def do_PUT(self):
            self.handle_any("PUT")

        def log_message(self, fmt, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    threading.Timer(a.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
