#!/usr/bin/env python3
"""A tiny Hugging Face hub look-alike on 127.0.0.1 for the download test.

Serves directories as repos: `hub_server.py PORTFILE org/name=DIR ...`
  GET /api/models/<org>/<name>/revision/main?blobs=true  -> {"sha", "siblings": [{rfilename, size, blobId, lfs}]}
  GET /<org>/<name>/resolve/<sha>/<file>                 -> the file, with Range support
.safetensors files are listed as LFS files (sha256); others with a blobId. Writes the port to PORTFILE.
Set HUB_FAIL_AFTER=N to cut every file response after N bytes (to test resuming)."""
import hashlib
import http.server
import json
import os
import sys

REPOS = {}
FAIL_AFTER = int(os.environ.get("HUB_FAIL_AFTER", "0"))


def listing(repo):
    d = REPOS[repo]
    sib = []
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        data = open(p, "rb").read()
        e = {"rfilename": f, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
        if f.endswith(".safetensors"):
            e["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        sib.append(e)
    sha = hashlib.sha1(repo.encode()).hexdigest()
    return {"id": repo, "sha": sha, "siblings": sib}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo = parts[2] + "/" + parts[3]
            if repo not in REPOS:
                return self.send_error(404)
            body = json.dumps(listing(repo)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if len(parts) == 5 and parts[2] == "resolve":
            repo = parts[0] + "/" + parts[1]
            if repo not in REPOS:
                return self.send_error(404)
            p = os.path.join(REPOS[repo], parts[4])
            if not os.path.isfile(p):
                return self.send_error(404)
            data = open(p, "rb").read()
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
            chunk = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if FAIL_AFTER and len(chunk) > FAIL_AFTER:
                self.wfile.write(chunk[:FAIL_AFTER])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)
            return
        self.send_error(404)


def main():
    portfile = sys.argv[1]
    for a in sys.argv[2:]:
        repo, d = a.split("=", 1)
        REPOS[repo] = d
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
