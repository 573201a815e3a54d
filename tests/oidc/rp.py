"""A relying party built on Authlib, for the provider's tests.

A small web app on 127.0.0.1: /login (also the initiate-login URI: it
checks `iss`) sends the browser to the provider with state, nonce and PKCE
(S256) (`?keep=1`: the sign-in is kept live); /callback checks the RFC 9207 `iss`,
redeems the code with Authlib's OAuth2Session, verifies the ID token with
joserfc against the provider's JWKS, asks userinfo, refreshes, presents the
replaced refresh token again, and shows what happened as JSON in
<pre id="result">. /backchannel receives logout tokens and /logouts lists
them. It prints "listening <port>" once it serves.
"""

import argparse
import html
import json
import secrets
import sys
import threading
import urllib.parse
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

args = argparse.ArgumentParser()
args.add_argument("--issuer", required=True)
args.add_argument("--client-id", required=True)
args.add_argument("--client-secret", default="")
args.add_argument("--port", type=int, default=0)
ARGS = args.parse_args()

# joserfc warns that RFC 9864 deprecates the name "EdDSA" for the fully
# specified "Ed25519"; providers and libraries still use "EdDSA".
warnings.filterwarnings("ignore", message="EdDSA is deprecated")

METADATA = requests.get(ARGS.issuer + "/.well-known/openid-configuration", timeout=10).json()
assert METADATA["issuer"] == ARGS.issuer, METADATA
PENDING = {}
LOGOUTS = []
LOCK = threading.Lock()


def session(redirect_uri, **kwargs):
    return OAuth2Session(
        ARGS.client_id,
        ARGS.client_secret or None,
        scope="openid email profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if ARGS.client_secret else "none",
        **kwargs,
    )


def verify(id_token, nonce):
    keys = KeySet.import_key_set(requests.get(METADATA["jwks_uri"], timeout=10).json())
    token = jwt.decode(id_token, keys, algorithms=["EdDSA"])
    claims = {"iss": {"essential": True, "value": ARGS.issuer},
              "aud": {"essential": True, "value": ARGS.client_id},
              "sub": {"essential": True}, "exp": {"essential": True}}
    if nonce is not None:
        claims["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**claims).validate(token.claims)
    return token.claims


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def page(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def redirect_uri(self):
        return f"http://127.0.0.1:{self.server.server_port}/callback"

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            if url.path == "/login":
                self.login(query)
            elif url.path == "/callback":
                self.callback(query)
            elif url.path == "/logouts":
                with LOCK:
                    self.page(200, f'<pre id="result">{html.escape(json.dumps(LOGOUTS))}</pre>')
            else:
                self.page(404, "not here")
        except Exception as e:  # shown to the test, which fails on it
            self.page(500, f'<pre id="error">{html.escape(repr(e))}</pre>')

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if urllib.parse.urlsplit(self.path).path != "/backchannel":
            return self.page(404, "not here")
        try:
            claims = verify(form.get("logout_token", ""), None)
            assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
            assert "nonce" not in claims
            with LOCK:
                LOGOUTS.append(claims)
            self.page(200, "")
        except Exception as e:
            self.page(400, repr(e))

    def login(self, query):
        # A sign-in the provider starts names its issuer, which must be ours
        # (OpenID Connect Core §4).
        if "iss" in query and query["iss"] != ARGS.issuer:
            return self.page(400, f'<pre id="error">unknown issuer {html.escape(query["iss"])}</pre>')
        nonce = secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        client = session(self.redirect_uri())
        extra = {k: v for k, v in query.items() if k in ("prompt", "login_hint", "max_age")}
        uri, state = client.create_authorization_url(
            METADATA["authorization_endpoint"], nonce=nonce, code_verifier=verifier, **extra)
        with LOCK:
            PENDING[state] = (verifier, nonce, query.get("keep") == "1")
        self.send_response(302)
        self.send_header("location", uri)
        self.end_headers()

    def callback(self, query):
        if "error" in query:
            return self.page(200, f'<pre id="result">{html.escape(json.dumps(query))}</pre>')
        with LOCK:
            verifier, nonce, keep = PENDING.pop(query["state"])
        # RFC 9207: the answer names the issuer it came from.
        assert query.get("iss") == ARGS.issuer, query
        client = session(self.redirect_uri())
        token = client.fetch_token(
            METADATA["token_endpoint"], code=query["code"], code_verifier=verifier)
        claims = verify(token["id_token"], nonce)
        userinfo = client.get(METADATA["userinfo_endpoint"]).json()
        first_refresh = token["refresh_token"]
        refreshed = client.refresh_token(METADATA["token_endpoint"], refresh_token=first_refresh)
        verify(refreshed["id_token"], None)
        # Unless the sign-in is to be kept, the replaced refresh token is
        # presented again: the provider must refuse it and end the sign-in.
        reused = None if keep else requests.post(
            METADATA["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": first_refresh},
            auth=(ARGS.client_id, ARGS.client_secret) if ARGS.client_secret else None,
            timeout=10)
        result = {
            "sub": claims["sub"],
            "sid": claims.get("sid"),
            "email": claims.get("email"),
            "tenant": claims.get("tenant"),
            "login_kind": claims.get("login_kind"),
            "amr": claims.get("amr"),
            "userinfo_sub": userinfo.get("sub"),
            "userinfo_email": userinfo.get("email"),
            "refreshed": refreshed["refresh_token"] != first_refresh,
            "reuse_status": reused.status_code if reused is not None else None,
            "reuse_error": reused.json().get("error") if reused is not None else None,
        }
        self.page(200, f'<pre id="result">{html.escape(json.dumps(result))}</pre>')


server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
print(f"listening {server.server_port}", flush=True)
server.serve_forever()
