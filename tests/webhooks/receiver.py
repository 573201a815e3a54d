"""A webhook receiver for the tests: verifies each delivery's signature
with the Standard Webhooks reference library and appends what arrived, one
JSON line per delivery, to a file.

    receiver.py --port P --secret whsec_... --out FILE [--secret ...]

Answers 204 to a delivery whose signature verifies under one of the
secrets, and 400 to one that does not (recorded with "verified": false).
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", action="append", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    hooks = [Webhook(s) for s in args.secret]
    out = open(args.out, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = False
            for hook in hooks:
                try:
                    hook.verify(body, headers)
                    verified = True
                    break
                except Exception:
                    pass
            line = {"verified": verified, "id": headers.get("webhook-id", "")}
            if verified:
                payload = json.loads(body)
                data = payload["data"]
                line.update(
                    type=payload["type"],
                    position=int(data.get("position", "0")),
                    part=int(data.get("part", 0)),
                    signatures=len(headers.get("webhook-signature", "").split(" ")),
                )
            out.write(json.dumps(line) + "\n")
            out.flush()
            self.send_response(204 if verified else 400)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
