#!/usr/bin/env python3
"""A STAND-IN for the OpenSearch 1.2 node of a Hoss server (service `opensearch`,
container `server_opensearch_1`), written from the facts in docs/plans/hoss.md.

Models (the parts of the REST API that hossadm and the plans use, on port 9200):
  GET  _cluster/health                      {"status": "yellow"} (single node, no replicas),
                                            after --start-delay seconds (a node that starts)
  GET  _cat/indices?format=json             [{"index", "docs.count", "health"}]
  PUT  <index>/_doc/<id>  (JSON body)       one document (the drill's seed)
  DELETE <index>                            {"acknowledged": true}; 404 for a missing index
  PUT  _snapshot/<repo>  {"type": "fs", "settings": {"location": L}}
                                            registers a filesystem repository; L must be
                                            inside --path-repo (OpenSearch's path.repo rule)
  PUT  _snapshot/<repo>/<snap>              starts a snapshot of every index; state IN_PROGRESS
                                            for a moment, then SUCCESS; its files are written
                                            under the repository location
  GET  _snapshot/<repo>/<snap> | _all       {"snapshots": [{snapshot, state, indices,
                                            end_time_in_millis}]}, read from the repository
                                            files (so a restored repository folder is seen)
  POST _snapshot/<repo>/<snap>/_restore     restores the snapshot's indices; refuses (400)
                                            an index that still exists, as OpenSearch does
Index data lives under --data (the container's /usr/share/opensearch/data bind mount,
~/.hoss/data/opensearch), so it survives a container restart and a stale folder is seen.

Cannot model: Lucene, mappings, search; a restore that is still reading the snapshot when
the files are removed (here a restore copies synchronously); snapshot repository format
(the files are this stand-in's own JSON, not OpenSearch's); cluster state and templates
(`include_global_state` is accepted and ignored); security plugin, TLS, authentication.
"""

import argparse
import http.server
import json
import os
import shutil
import threading
import time
import urllib.parse

LOCK = threading.Lock()


class Node:
    def __init__(self, data, path_repo, start_delay):
        self.data = data
        self.path_repo = path_repo
        self.started = time.time() + start_delay
        self.repos_file = os.path.join(data, "repositories.json")

    # -- indices: one JSON file per index
    def _index_file(self, name):
        return os.path.join(self.data, "indices", name + ".json")

    def indices(self):
        d = os.path.join(self.data, "indices")
        if not os.path.isdir(d):
            return {}
        out = {}
        for f in sorted(os.listdir(d)):
            if f.endswith(".json"):
                with open(os.path.join(d, f)) as fh:
                    out[f[:-5]] = json.load(fh)
        return out

    def write_index(self, name, docs):
        os.makedirs(os.path.join(self.data, "indices"), exist_ok=True)
        tmp = self._index_file(name) + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(docs, fh, sort_keys=True)
        os.replace(tmp, self._index_file(name))

    # -- repositories
    def repos(self):
        try:
            with open(self.repos_file) as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def snapshots(self, repo):
        loc = self.repos()[repo]["location"]
        out = []
        if not os.path.isdir(loc):
            return out
        for f in sorted(os.listdir(loc)):
            if f.startswith("snap-") and f.endswith(".json"):
                with open(os.path.join(loc, f)) as fh:
                    out.append(json.load(fh))
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9200)
    ap.add_argument("--data", required=True)
    ap.add_argument("--path-repo", required=True)
    ap.add_argument("--start-delay", type=float, default=1.0)
    ap.add_argument("--bootstrap-index", default="")
    a = ap.parse_args()
    os.makedirs(a.data, exist_ok=True)
    node = Node(a.data, a.path_repo, a.start_delay)
    if a.bootstrap_index and not os.path.isdir(os.path.join(a.data, "indices")):
        # The core service creates its metadata index at start when it is missing
        # (server/core/main.go: CreateMetadataSearchIndex); modelled here.
        node.write_index(a.bootstrap_index, {})

    class H(http.server.BaseHTTPRequestHandler):
        def reply(self, status, obj):
            body = (json.dumps(obj) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            return json.loads(raw) if raw.strip() else {}

        def log_message(self, fmt, *args):
            print("opensearch-standin:", fmt % args, flush=True)

        def handle_any(self, method):
            if time.time() < node.started:
                # The node is not listening yet: close without an answer (curl fails).
                self.close_connection = True
                return
            url = urllib.parse.urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            with LOCK:
                try:
                    self.route(method, parts)
                except KeyError as e:
                    self.reply(404, {"error": {"type": "resource_not_found_exception", "reason": f"{e} missing"}, "status": 404})

        def route(self, method, parts):
            if parts == ["_cluster", "health"] and method == "GET":
                return self.reply(200, {"cluster_name": "docker-cluster", "status": "yellow", "number_of_nodes": 1})
            if parts == ["_cat", "indices"] and method == "GET":
                return self.reply(200, [{"index": k, "docs.count": str(len(v)), "health": "yellow"} for k, v in node.indices().items()])
            if len(parts) >= 1 and parts[0] == "_snapshot":
                return self.snapshot(method, parts[1:])
            if len(parts) == 3 and parts[1] == "_doc" and method in ("PUT", "POST"):
                docs = node.indices().get(parts[0], {})
                docs[parts[2]] = self.body()
                node.write_index(parts[0], docs)
                return self.reply(201, {"result": "created", "_index": parts[0], "_id": parts[2]})
            if len(parts) == 1 and method == "DELETE":
                if parts[0] not in node.indices():
                    return self.reply(404, {"error": {"type": "index_not_found_exception", "index": parts[0]}, "status": 404})
                os.remove(node._index_file(parts[0]))
                return self.reply(200, {"acknowledged": True})
            return self.reply(400, {"error": f"unsupported by the stand-in: {method} /{'/'.join(parts)}"})

        def snapshot(self, method, parts):
            repos = node.repos()
            if len(parts) == 1 and method == "PUT":
                b = self.body()
                loc = os.path.normpath(b.get("settings", {}).get("location", ""))
                if b.get("type") != "fs" or not (loc + "/").startswith(os.path.normpath(a.path_repo) + "/") and loc != os.path.normpath(a.path_repo):
                    return self.reply(500, {"error": {"type": "repository_exception", "reason": f"location [{loc}] doesn't match any of the locations specified by path.repo"}, "status": 500})
                repos[parts[0]] = {"type": "fs", "location": loc}
                tmp = node.repos_file + ".tmp"
                with open(tmp, "w") as fh:
                    json.dump(repos, fh)
                os.replace(tmp, node.repos_file)
                return self.reply(200, {"acknowledged": True})
            if not parts or parts[0] not in repos:
                raise KeyError(f"repository [{parts[0] if parts else ''}]")
            repo, loc = parts[0], repos[parts[0]]["location"]
            if len(parts) == 2 and method == "PUT":
                name = parts[1]
                snap = {"snapshot": name, "state": "IN_PROGRESS", "indices": sorted(node.indices())}
                os.makedirs(loc, exist_ok=True)
                data = node.indices()

                def finish():
                    time.sleep(0.5)
                    with LOCK:
                        d = os.path.join(loc, "indices", name)
                        os.makedirs(d, exist_ok=True)
                        for idx, docs in data.items():
                            with open(os.path.join(d, idx + ".json"), "w") as fh:
                                json.dump(docs, fh, sort_keys=True)
                        snap.update(state="SUCCESS", end_time_in_millis=int(time.time() * 1000))
                        with open(os.path.join(loc, f"snap-{name}.json"), "w") as fh:
                            json.dump(snap, fh)
                        with open(os.path.join(loc, "index.latest"), "w") as fh:
                            fh.write(name + "\n")
                node.pending = snap
                threading.Thread(target=finish, daemon=True).start()
                return self.reply(200, {"accepted": True})
            if len(parts) == 2 and method == "GET":
                snaps = node.snapshots(repo)
                if parts[1] == "_all":
                    return self.reply(200, {"snapshots": snaps})
                found = [s for s in snaps if s["snapshot"] == parts[1]]
                pending = getattr(node, "pending", None)
                if not found and pending and pending["snapshot"] == parts[1]:
                    found = [pending]
                if not found:
                    raise KeyError(f"snapshot [{repo}:{parts[1]}]")
                return self.reply(200, {"snapshots": found})
            if len(parts) == 3 and parts[2] == "_restore" and method == "POST":
                found = [s for s in node.snapshots(repo) if s["snapshot"] == parts[1]]
                if not found:
                    raise KeyError(f"snapshot [{repo}:{parts[1]}]")
                existing = node.indices()
                for idx in found[0]["indices"]:
                    if idx in existing:
                        return self.reply(500, {"error": {"type": "snapshot_restore_exception", "reason": f"cannot restore index [{idx}] because an open index with same name already exists in the cluster"}, "status": 500})
                for idx in found[0]["indices"]:
                    with open(os.path.join(loc, "indices", parts[1], idx + ".json")) as fh:
                        node.write_index(idx, json.load(fh))
                return self.reply(200, {"accepted": True})
            return self.reply(400, {"error": "unsupported snapshot call"})

        def do_GET(self):
            self.handle_any("GET")

        def do_PUT(self):
            self.handle_any("PUT")

        def do_POST(self):
            self.handle_any("POST")

        def do_DELETE(self):
            self.handle_any("DELETE")

    srv = http.server.ThreadingHTTPServer(("0.0.0.0", a.port), H)
    srv.serve_forever()


if __name__ == "__main__":
    main()
