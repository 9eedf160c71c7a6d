#!/usr/bin/env python3
"""A STAND-IN for the Elasticsearch master's HTTP API as StackState's restore uses it (the
plan: _cat/indices, DELETE /INDEX, GET _snapshot; the chart's restore job script: POST
_snapshot/<repo>/<snap>/_restore). There is no Elasticsearch here; this is not it. Written
from Elasticsearch's API reference (7.x: get snapshot API, restore snapshot API, delete
index API, cat indices API), not from the plan. It answers:
  GET    /_cat/indices?format=json     the indices, in Elasticsearch's JSON shape
  DELETE /INDEX                        200 {"acknowledged":true}, or 404 index_not_found_exception
  GET    /_snapshot/REPO/SNAP|_all     {"snapshots":[{"snapshot","uuid","indices","state",...}]},
                                       or 404 snapshot_missing_exception / repository_missing_exception
  POST   /_snapshot/REPO/SNAP/_restore {"indices": "a,b"} (comma list; empty = every index of
         the snapshot): restores each index from the snapshot; 500 snapshot_restore_exception
         when an open index of that name exists ("existing indices won't be overwritten"),
         404 index_not_found_exception when the snapshot does not hold it. `?pretty` answers
         in Elasticsearch's pretty form ("failed" : 0), as the chart's script asks for.
Every request is appended to --log as "METHOD PATH"; the cluster lives in --state (JSON:
{"indices": {"INDEX": {"docs.count": "N", ...}}, "snapshots": {"REPO": {"SNAP":
{"indices": [...], "state": "SUCCESS"}}}}) so the drill can read and arrange it. Exits by
itself after --lifetime seconds. Cannot model: shards, wildcards in index lists, partial
snapshots' per-shard failures, closed indices, aliases, data streams.
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
        def answer(self, code, body, pretty=False):
            # Elasticsearch's pretty form puts " : " between a key and its value.
            data = (json.dumps(body, indent=2, separators=(",", " : ")) + "\n" if pretty
                    else json.dumps(body)).encode()
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
                full = load()
                state = full.setdefault("indices", {})
                snaps = full.setdefault("snapshots", {})
                name = url.path.strip("/")
                parts = name.split("/")
                pretty = "pretty" in urllib.parse.parse_qs(url.query, keep_blank_values=True)
                if method == "GET" and url.path == "/_cat/indices":
                    return self.answer(200, [
                        {"health": "green", "status": "open", "index": i, "pri": "1", "rep": "0",
                         "docs.count": v.get("docs.count", "0"), "store.size": "1kb"}
                        for i, v in sorted(state.items())])
                if parts[0] == "_snapshot" and len(parts) >= 3:
                    repo, snap = parts[1], parts[2]
                    if repo not in snaps:
                        return self.answer(404, {"error": {"type": "repository_missing_exception",
                                                           "reason": f"[{repo}] missing"}, "status": 404})
                    if method == "GET" and len(parts) == 3:
                        names = sorted(snaps[repo]) if snap in ("_all", "*") else [snap]
                        if any(n not in snaps[repo] for n in names):
                            return self.answer(404, {"error": {"type": "snapshot_missing_exception",
                                                               "reason": f"[{repo}:{snap}] is missing"},
                                                     "status": 404})
                        return self.answer(200, {"snapshots": [
                            {"snapshot": n, "uuid": f"uuid-{n}", "indices": snaps[repo][n]["indices"],
                             "state": snaps[repo][n].get("state", "SUCCESS"),
                             "shards": {"total": len(snaps[repo][n]["indices"]), "failed": 0,
                                        "successful": len(snaps[repo][n]["indices"])}}
                            for n in names]})
                    if method == "POST" and len(parts) == 4 and parts[3] == "_restore":
                        if snap not in snaps[repo]:
                            return self.answer(404, {"error": {"type": "snapshot_missing_exception",
                                                               "reason": f"[{repo}:{snap}] is missing"},
                                                     "status": 404}, pretty)
                        length = int(self.headers.get("Content-Length") or 0)
                        body = json.loads(self.rfile.read(length) or b"{}")
                        held = snaps[repo][snap]["indices"]
                        want = [i for i in (body.get("indices") or "").split(",") if i] or list(held)
                        for i in want:
                            if i not in held:
                                return self.answer(404, {"error": {"type": "index_not_found_exception",
                                                                   "reason": f"no such index [{i}]"},
                                                         "status": 404}, pretty)
                            if i in state:
                                return self.answer(500, {"error": {
                                    "type": "snapshot_restore_exception",
                                    "reason": f"[{repo}:{snap}/uuid-{snap}] cannot restore index [{i}] "
                                              "because an open index with same name already exists in "
                                              "the cluster. Either close or delete the existing index or "
                                              "restore the index under a different name by providing a "
                                              "rename pattern and replacement name"}, "status": 500}, pretty)
                        for i in want:
                            state[i] = {"docs.count": "100", "restored_from": snap}
                        save(full)
                        return self.answer(200, {"snapshot": {"snapshot": snap, "indices": want,
                                                              "shards": {"total": len(want), "failed": 0,
                                                                         "successful": len(want)}}}, pretty)
                if method == "DELETE" and name and "/" not in name:
                    if name not in state:
                        return self.answer(404, {"error": {"type": "index_not_found_exception",
                                                           "reason": f"no such index [{name}]"},
                                                 "status": 404})
                    del state[name]
                    save(full)
                    return self.answer(200, {"acknowledged": True})
                return self.answer(400, {"error": f"elasticsearch stand-in: {method} {url.path} "
                                                  "is not answered by this stand-in"})

        def do_GET(self):
            self.handle_any("GET")

        def do_DELETE(self):
            self.handle_any("DELETE")

        def do_POST(self):
            self.handle_any("POST")

        def log_message(self, fmt, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    threading.Timer(a.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
