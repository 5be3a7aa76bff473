#!/usr/bin/env python3
"""A webhook receiver for admsd's tests: verifies Standard Webhooks signatures with the
specification's algorithm in the standard library (hmac, hashlib, base64), and records every
request it gets as one JSON line (fsynced) in --log.

Its answers are set at run time: POST /__mode with a JSON object
  {"status": 200}                  answer this status (e.g. 500, 302 with a Location, 410)
  {"retry_after": "2"}             add Retry-After to the answers
  {"delay": 0.5}                   wait this long before answering (longer than admsd's timeout:
                                   a timeout)
  {"reject_pin": "42", "reject_status": 422}
                                   answer reject_status to punch.created events of that PIN
Usage: receiver.py --secret whsec_... [--secret whsec_...] --log FILE --port-file FILE [--port N]
It listens on 127.0.0.1 (port N, else a free one) and writes the port to --port-file.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE = 5 * 60


def verify(secrets, msg_id, timestamp, body, header):
    """The Standard Webhooks verification: any v1 signature made with any secret matches."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - ts) > TOLERANCE:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for part in (header or "").split(" "):
            version, _, signature = part.partition(",")
            if version == "v1" and hmac.compare_digest(signature, expected):
                return True
    return False


class State:
    def __init__(self, log_path, secrets):
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")
        self.secrets = secrets
        self.mode = {"status": 200}


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path == "/__mode":
                with state.lock:
                    state.mode = json.loads(body or b"{}")
                    state.mode.setdefault("status", 200)
                self.reply(200)
                return
            with state.lock:
                mode = dict(state.mode)
            status = mode.get("status", 200)
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            pin = (event.get("data") or {}).get("pin")
            if mode.get("reject_pin") is not None and pin == mode["reject_pin"]:
                status = mode.get("reject_status", 422)
            record = {
                "id": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "signature": self.headers.get("webhook-signature"),
                "verified": verify(state.secrets, self.headers.get("webhook-id"),
                                   self.headers.get("webhook-timestamp"), body,
                                   self.headers.get("webhook-signature")),
                "path": self.path,
                "body": body.decode("utf-8", "replace"),
                "status": status,
                "at": time.time(),
            }
            if mode.get("delay"):
                time.sleep(float(mode["delay"]))
            with state.lock:
                state.log.write(json.dumps(record) + "\n")
                state.log.flush()
                os.fsync(state.log.fileno())
            headers = []
            if mode.get("retry_after") and status in (429, 503):
                headers.append(("Retry-After", str(mode["retry_after"])))
            if 300 <= status < 400:
                headers.append(("Location", mode.get("location", "http://127.0.0.1:9/")))
            self.reply(status, headers)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", action="append", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    state = State(args.log, args.secret)
    class Server(ThreadingHTTPServer):
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            pass  # admsd gave up waiting (a timeout case): nothing to report

    server = Server(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
