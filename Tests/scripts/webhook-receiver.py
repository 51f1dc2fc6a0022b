#!/usr/bin/env python3
"""A loopback HTTP endpoint for audit-stream tests.

usage: webhook-receiver.py PORTFILE LOGFILE FAILFIRST
Listens on 127.0.0.1 (free port, written to PORTFILE), answers the first FAILFIRST POSTs with 503 and the rest
with 204, and appends one JSON line per POST to LOGFILE: {"status", "authorization", "body"}.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

portfile, logfile, failfirst = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = {"n": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        seen["n"] += 1
        status = 503 if seen["n"] <= failfirst else 204
        with open(logfile, "a") as f:
            f.write(json.dumps({"status": status, "authorization": self.headers.get("Authorization"), "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os

os.rename(portfile + ".tmp", portfile)
server.serve_forever()
