#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of vaultd (the Vault test double) against /work/shared/vault-api.md.

Starts one vaultd on loopback (ports chosen by the kernel), talks HTTPS to it
with urllib and an SSL context that trusts only the CA it wrote, and drives
its control API. Ends with "N passed, M failed"; exit status 1 on failure.
"""

import base64
import concurrent.futures
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
VAULTD = os.path.join(HERE, "vaultd.py")

ENVELOPE_KEYS = {"request_id", "lease_id", "renewable", "lease_duration", "data",
                 "wrap_info", "warnings", "auth"}
AUTH_KEYS = {"client_token", "accessor", "policies", "token_policies", "metadata",
             "lease_duration", "renewable", "entity_id", "token_type", "orphan",
             "mfa_requirement", "num_uses"}
LOOKUP_KEYS = {"accessor", "creation_time", "creation_ttl", "display_name", "entity_id",
               "expire_time", "explicit_max_ttl", "id", "issue_time", "meta", "num_uses",
               "orphan", "path", "policies", "renewable", "ttl", "type"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
SERIAL = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2})*$")

CONFIG = {
    "approle": {
        "sidecar": {"role_id": "sidecar-role-id", "secret_ids": {"sidecar-secret-id": {}},
                    "token_ttl": 3600, "token_max_ttl": 0,
                    "token_policies": ["pki-client"]},
        "short": {"role_id": "short-role-id", "secret_ids": {"short-secret": {}},
                  "token_ttl": 3600, "token_max_ttl": 1500, "token_policies": ["pki-client"]},
        "batch": {"role_id": "batch-role-id", "secret_ids": {"batch-secret": {}},
                  "token_ttl": 600, "token_type": "batch", "token_policies": ["pki-client"]},
        "norenew": {"role_id": "norenew-role-id", "secret_ids": {"norenew-secret": {}},
                    "token_ttl": 600, "renewable": False},
        "nosecret": {"role_id": "nosecret-role-id", "bind_secret_id": False,
                     "secret_id_bound_cidrs": [], "token_ttl": 60},
    },
    "pki": {"pki": {"roles": {
        "leased": {"allow_any_name": True, "ttl": 600, "max_ttl": 3600, "key_type": "ec",
                   "generate_lease": True},
        "rsa": {"allow_any_name": True, "ttl": 600, "max_ttl": 3600, "key_type": "rsa",
                "client_flag": True, "server_flag": False},
        "any": {"allow_any_name": True, "key_type": "any"},
        "long": {"allow_any_name": True, "max_ttl": "1000000h", "key_type": "ec"},
        "trunc": {"allow_any_name": True, "max_ttl": "1000000h", "key_type": "ec",
                  "leaf_not_after_behavior": "truncate"},
        "uri": {"allow_any_name": True, "key_type": "ec", "allowed_uri_sans": ["spiffe://td/*"]},
        "noip": {"allow_any_name": True, "key_type": "ec", "allow_ip_sans": False},
    }}},
    "kv": {"secret": {"version": 2, "data": {
        "app/p12": [{"p12": "djE=", "p12_password": "one"},
                    {"p12": "djI=", "p12_password": "two"},
                    {"p12": "djM=", "p12_password": "s3cr3t"}]}},
           "kv": {"version": 1, "data": {"app/cert": {"pem": "x"},
                                          "app/ttl": {"pem": "y", "ttl": "1h"}}}},
}


class Vaultd:
    """Start/stop one vaultd and talk to it."""

    def __init__(self, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="vaultd-test-")
        cfg = os.path.join(self.dir, "config.json")
        with open(cfg, "w") as f:
            json.dump(CONFIG, f)
        self.ports = os.path.join(self.dir, "ports.json")
        self.log = open(os.path.join(self.dir, "vaultd.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, VAULTD, "--dir", os.path.join(self.dir, "state"),
             "--config", cfg, "--ports-file", self.ports, "--exit-with-parent"] + list(extra_args),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while not os.path.exists(self.ports):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("vaultd did not start: " + open(self.log.name).read())
            time.sleep(0.1)
        with open(self.ports) as f:
            self.info = json.load(f)
        self.port = self.info["port"]
        self.ctx = ssl.create_default_context(cafile=self.info["ca_file"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def req(self, method, path, body=None, token=None, headers=None, raw=False, timeout=30):
        url = "https://127.0.0.1:%d%s" % (self.port, path)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = dict(headers or {})
        if token:
            h["X-Vault-Token"] = token
        r = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            resp = urllib.request.urlopen(r, context=self.ctx, timeout=timeout)
            status, hdrs, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, payload = e.code, e.headers, e.read()
        if raw:
            return status, hdrs, payload
        return status, hdrs, (json.loads(payload) if payload else None)

    def ctl(self, path, body=None, method=None):
        url = "http://127.0.0.1:%d/_test%s" % (self.info["control_port"], path)
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
        with urllib.request.urlopen(r, timeout=30) as resp:
            return json.loads(resp.read())


def openssl(*args, input_bytes=None):
    p = subprocess.run(["openssl"] + list(args), input=input_bytes, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def pubkey_of_cert(pem):
    return subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=pem.encode(),
                          stdout=subprocess.PIPE, check=True).stdout


def pubkey_of_key(pem):
    return subprocess.run(["openssl", "pkey", "-pubout"], input=pem.encode(),
                          stdout=subprocess.PIPE, check=True).stdout


def cert_dates(pem):
    import datetime
    rc, out = openssl("x509", "-noout", "-startdate", "-enddate", "-serial",
                      input_bytes=pem.encode())
    f = dict(ln.split("=", 1) for ln in out.strip().splitlines())
    conv = lambda s: int(datetime.datetime.strptime(s, "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=datetime.timezone.utc).timestamp())
    return conv(f["notBefore"]), conv(f["notAfter"]), f["serial"].lower()


V = None


class Base(unittest.TestCase):
    def setUp(self):
        V.ctl("/reset", {})
        V.ctl("/config", {"legacy_invalid_token": False, "error_style": "multierror",
                          "require_request_header": False, "namespaces": [],
                          "policies": None, "health_mode": "active"})

    def login(self, role="sidecar"):
        creds = {"sidecar": ("sidecar-role-id", "sidecar-secret-id"),
                 "short": ("short-role-id", "short-secret"),
                 "batch": ("batch-role-id", "batch-secret"),
                 "norenew": ("norenew-role-id", "norenew-secret")}[role]
        st, _, b = V.req("PUT", "/v1/auth/approle/login",
                         {"role_id": creds[0], "secret_id": creds[1]})
        self.assertEqual(st, 200, b)
        return b["auth"]["client_token"], b

    def root(self):
        return "root"

    def assertEnvelope(self, b):
        self.assertTrue(ENVELOPE_KEYS <= set(b), sorted(b))
        self.assertIsInstance(b["request_id"], str)
        self.assertIsInstance(b["lease_id"], str)
        self.assertIsInstance(b["renewable"], bool)
        self.assertIsInstance(b["lease_duration"], int)
        self.assertIsNone(b["wrap_info"])
        self.assertNotEqual(b["warnings"], [])

    def assertErr(self, resp, status, text=None, exact=True):
        st, hdrs, b = resp
        self.assertEqual(st, status, b)
        self.assertEqual(set(b), {"errors"})
        self.assertIsInstance(b["errors"], list)
        if text is not None:
            if exact:
                self.assertEqual(b["errors"], [text])
            else:
                self.assertIn(text, b["errors"][0])
        self.assertEqual(hdrs["Content-Type"], "application/json")
        self.assertEqual(hdrs["Cache-Control"], "no-store")


# ---------------------------------------------------------------- §1 common

class TestCommon(Base):
    def test_health_fields_and_codes(self):
        st, h, b = V.req("GET", "/v1/sys/health")
        self.assertEqual(st, 200)
        for k in ("initialized", "sealed", "standby", "performance_standby", "version",
                  "server_time_utc", "cluster_name"):
            self.assertIn(k, b)
        self.assertIs(b["sealed"], False)
        V.ctl("/config", {"health_mode": "standby"})
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 429)
        self.assertEqual(V.req("GET", "/v1/sys/health?standbyok=true")[0], 200)
        V.ctl("/config", {"health_mode": "perfstandby"})
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 473)
        V.ctl("/config", {"health_mode": "drsecondary"})
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 472)
        V.ctl("/config", {"health_mode": "uninit"})
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 501)
        V.ctl("/config", {"health_mode": "active"})
        V.ctl("/seal", {})
        st, _, b = V.req("GET", "/v1/sys/health")
        self.assertEqual(st, 503)
        self.assertIs(b["sealed"], True)
        self.assertEqual(V.req("GET", "/v1/sys/health?sealedcode=299")[0], 299)
        V.ctl("/unseal", {})

    def test_sealed_503(self):
        V.ctl("/seal", {})
        self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token="root"), 503,
                       "Vault is sealed")
        self.assertErr(V.req("PUT", "/v1/auth/approle/login", {"role_id": "x"}), 503,
                       "Vault is sealed")
        V.ctl("/unseal", {})
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token="root")[0], 200)

    def test_headers_on_success(self):
        st, h, b = V.req("GET", "/v1/auth/token/lookup-self", token="root")
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(h["Cache-Control"], "no-store")
        self.assertEnvelope(b)
        self.assertIsNone(b["warnings"])

    def test_unsupported_path_and_operation(self):
        self.assertErr(V.req("GET", "/v1/nonexistent/thing", token="root"), 404,
                       "unsupported path")
        self.assertErr(V.req("GET", "/v1/pki/issue/client", token="root"), 405,
                       "unsupported operation")
        self.assertErr(V.req("LIST", "/v1/pki/issue/client", token="root"), 405,
                       "unsupported operation")
        self.assertErr(V.req("PUT", "/v1/pki/issue/client.", {"common_name": "a"},
                             token="root"), 404, "unsupported path")

    def test_put_post_same(self):
        t, _ = self.login()
        for m in ("PUT", "POST"):
            st, _, b = V.req(m, "/v1/auth/token/renew-self", {"increment": 60}, token=t)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["auth"]["lease_duration"], 60)

    def test_unknown_params_warning(self):
        t, _ = self.login()
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": 60, "y": 1, "x": 2},
                         token=t)
        self.assertEqual(b["warnings"],
                         ["Endpoint ignored these unrecognized parameters: [x y]"])

    def test_duration_spellings(self):
        t, _ = self.login()
        for inc, want in ((90, 90), ("90", 90), ("30s", 30), ("1m30s", 90), ("1h", 3600)):
            st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": inc}, token=t)
            self.assertEqual((st, b["auth"]["lease_duration"]), (200, want), inc)
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": "soon"}, token=t)
        self.assertEqual(st, 400)

    def test_bad_json_400(self):
        st, _, b = V.req("PUT", "/v1/auth/approle/login", b"{not json")
        self.assertEqual(st, 400)
        self.assertIn("failed to parse JSON input", b["errors"][0])

    def test_body_too_large_413(self):
        s = socket.create_connection(("127.0.0.1", V.port))
        ss = V.ctx.wrap_socket(s, server_hostname="localhost")
        ss.sendall(b"PUT /v1/auth/approle/login HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 40000000\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = ss.recv(4096)
            if not chunk:
                break
            data += chunk
        ss.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:50])

    def test_request_header_required_412(self):
        V.ctl("/config", {"require_request_header": True})
        self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token="root"), 412,
                       'missing "X-Vault-Request" header')
        st, _, _ = V.req("GET", "/v1/auth/token/lookup-self", token="root",
                         headers={"X-Vault-Request": "true"})
        self.assertEqual(st, 200)

    def test_namespace_disabled_403(self):
        self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token="root",
                             headers={"X-Vault-Namespace": "ns1/"}), 403,
                       "namespaces feature not enabled")

    def test_namespace_enabled(self):
        V.ctl("/config", {"namespaces": ["ns1", "ns1/ns2"]})
        V.ctl("/requests", method="DELETE")
        st, h, b = V.req("GET", "/v1/ns2/secret/data/app/p12", token="root",
                         headers={"X-Vault-Namespace": "ns1/"})
        self.assertEqual(st, 200, b)
        self.assertEqual(h["X-Vault-Namespace"], "ns1/")
        st, _, b = V.req("GET", "/v1/ns1/ns2/secret/data/app/p12", token="root")
        self.assertEqual(st, 200, b)
        log = V.ctl("/requests")["requests"]
        self.assertEqual([r["namespace"] for r in log], ["ns1/ns2", "ns1/ns2"])
        self.assertEqual(log[0]["route"], "secret/data/app/p12")
        self.assertEqual(log[0]["headers"]["X-Vault-Namespace"], "ns1/")


# ---------------------------------------------------------------- §2 auth

class TestAuth(Base):
    def test_approle_login_envelope(self):
        t, b = self.login()
        self.assertEnvelope(b)
        self.assertEqual(set(b["auth"]), AUTH_KEYS)
        self.assertIsNone(b["data"])
        self.assertEqual(b["lease_duration"], 0)
        self.assertEqual(b["lease_id"], "")
        self.assertIs(b["renewable"], False)
        a = b["auth"]
        self.assertTrue(a["client_token"].startswith("hvs."))
        self.assertEqual(a["policies"], ["default", "pki-client"])
        self.assertEqual(a["token_policies"], ["default", "pki-client"])
        self.assertEqual(a["metadata"], {"role_name": "sidecar"})
        self.assertEqual(a["lease_duration"], 3600)
        self.assertIs(a["renewable"], True)
        self.assertEqual(a["token_type"], "service")
        self.assertIs(a["orphan"], True)
        self.assertIsNone(a["mfa_requirement"])
        self.assertEqual(a["num_uses"], 0)
        self.assertRegex(a["accessor"], r"^[0-9a-f-]{36}$")

    def test_approle_errors_400(self):
        L = "/v1/auth/approle/login"
        self.assertErr(V.req("PUT", L, {"secret_id": "x"}), 400, "missing role_id")
        self.assertErr(V.req("PUT", L, {"role_id": "sidecar-role-id"}), 400, "missing secret_id")
        self.assertErr(V.req("PUT", L, {"role_id": "nope", "secret_id": "x"}), 400,
                       "invalid role or secret ID")
        self.assertErr(V.req("PUT", L, {"role_id": "sidecar-role-id", "secret_id": "wrong"}),
                       400, "invalid role or secret ID")
        self.assertErr(V.req("GET", L), 405, "unsupported operation")

    def test_approle_no_token_needed_and_bind_secret_id_false(self):
        st, _, b = V.req("PUT", "/v1/auth/approle/login", {"role_id": "nosecret-role-id"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["auth"]["lease_duration"], 60)

    def test_secret_id_num_uses_and_ttl(self):
        sid = V.ctl("/approle/secret_id", {"role_name": "sidecar", "num_uses": 1})["secret_id"]
        body = {"role_id": "sidecar-role-id", "secret_id": sid}
        self.assertEqual(V.req("PUT", "/v1/auth/approle/login", body)[0], 200)
        self.assertErr(V.req("PUT", "/v1/auth/approle/login", body), 400,
                       "invalid role or secret ID")
        sid = V.ctl("/approle/secret_id", {"role_name": "sidecar", "ttl": 30})["secret_id"]
        body = {"role_id": "sidecar-role-id", "secret_id": sid}
        self.assertEqual(V.req("PUT", "/v1/auth/approle/login", body)[0], 200)
        V.ctl("/clock", {"advance": 31})
        self.assertErr(V.req("PUT", "/v1/auth/approle/login", body), 400,
                       "invalid role or secret ID")

    def test_secret_id_cidr(self):
        sid = V.ctl("/approle/secret_id", {"role_name": "sidecar",
                                           "cidr_list": "10.0.0.0/8"})["secret_id"]
        st, _, b = V.req("PUT", "/v1/auth/approle/login",
                         {"role_id": "sidecar-role-id", "secret_id": sid})
        self.assertEqual(st, 400)
        sid = V.ctl("/approle/secret_id", {"role_name": "sidecar",
                                           "cidr_list": ["127.0.0.0/8"]})["secret_id"]
        st, _, b = V.req("PUT", "/v1/auth/approle/login",
                         {"role_id": "sidecar-role-id", "secret_id": sid})
        self.assertEqual(st, 200)

    def test_lookup_self(self):
        t, _ = self.login()
        st, _, b = V.req("GET", "/v1/auth/token/lookup-self", token=t)
        self.assertEqual(st, 200)
        self.assertEnvelope(b)
        self.assertIsNone(b["auth"])
        d = b["data"]
        self.assertTrue(LOOKUP_KEYS <= set(d), sorted(LOOKUP_KEYS - set(d)))
        self.assertEqual(d["id"], t)
        self.assertIsInstance(d["creation_time"], int)
        self.assertEqual(d["creation_ttl"], 3600)
        self.assertTrue(3595 <= d["ttl"] <= 3600, d["ttl"])
        self.assertRegex(d["expire_time"], RFC3339)
        self.assertRegex(d["issue_time"], RFC3339)
        self.assertEqual(d["meta"], {"role_name": "sidecar"})
        self.assertEqual(d["path"], "auth/approle/login")
        self.assertEqual(d["type"], "service")
        V.ctl("/clock", {"advance": 1000})
        d = V.req("GET", "/v1/auth/token/lookup-self", token=t)[2]["data"]
        self.assertTrue(2595 <= d["ttl"] <= 2600, d["ttl"])
        d = V.req("GET", "/v1/auth/token/lookup-self", token="root")[2]["data"]
        self.assertIsNone(d["expire_time"])
        self.assertEqual(d["ttl"], 0)

    def test_bearer_and_missing_token(self):
        t, _ = self.login()
        st, _, b = V.req("GET", "/v1/auth/token/lookup-self",
                         headers={"Authorization": "Bearer " + t})
        self.assertEqual(st, 200)
        st, _, b = V.req("GET", "/v1/auth/token/lookup-self")
        self.assertEqual(st, 403)
        self.assertIn("permission denied", b["errors"][0])
        self.assertNotIn("invalid token", b["errors"][0])

    def test_renew_self_increment_from_now(self):
        t, _ = self.login()
        V.ctl("/clock", {"advance": 1000})
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": 600}, token=t)
        self.assertEqual(st, 200, b)
        self.assertEnvelope(b)
        self.assertEqual(set(b["auth"]), AUTH_KEYS)
        self.assertIsNone(b["data"])
        self.assertEqual(b["auth"]["client_token"], t)
        self.assertEqual(b["auth"]["lease_duration"], 600)   # not 2600+600
        d = V.req("GET", "/v1/auth/token/lookup-self", token=t)[2]["data"]
        self.assertTrue(595 <= d["ttl"] <= 600)
        self.assertIn("last_renewal_time", d)
        self.assertRegex(d["last_renewal"], RFC3339)
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": 0}, token=t)
        self.assertEqual(b["auth"]["lease_duration"], 3600)  # role token_ttl
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", None, token=t)
        self.assertEqual(b["auth"]["lease_duration"], 3600)

    def test_renew_self_capped_by_max_ttl(self):
        t, b = self.login("short")
        self.assertEqual(b["auth"]["lease_duration"], 1500)   # token_ttl 1h capped to 25m
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": 3600}, token=t)
        self.assertEqual(st, 200)
        # what is left to the max TTL: a second boundary may pass since login
        self.assertTrue(1499 <= b["auth"]["lease_duration"] <= 1500, b["auth"])
        self.assertEqual(b["warnings"], ['TTL of "1h" exceeded the effective max_ttl of "25m"; '
                                         'TTL value is capped accordingly'])
        V.ctl("/clock", {"advance": 1200})
        st, _, b = V.req("PUT", "/v1/auth/token/renew-self", {"increment": 3600}, token=t)
        self.assertTrue(299 <= b["auth"]["lease_duration"] <= 300, b["auth"])
        V.ctl("/clock", {"advance": 301})
        self.assertErr(V.req("PUT", "/v1/auth/token/renew-self", {}, token=t), 403,
                       "invalid token", exact=False)

    def test_batch_and_nonrenewable(self):
        t, b = self.login("batch")
        self.assertTrue(t.startswith("hvb."))
        self.assertIs(b["auth"]["renewable"], False)
        self.assertEqual(b["auth"]["token_type"], "batch")
        self.assertErr(V.req("PUT", "/v1/auth/token/renew-self", {}, token=t), 400,
                       "batch tokens cannot be renewed")
        t, b = self.login("norenew")
        self.assertIs(b["auth"]["renewable"], False)
        self.assertErr(V.req("PUT", "/v1/auth/token/renew-self", {}, token=t), 400,
                       "lease is not renewable")

    def test_expired_token_403_both_messages(self):
        t, _ = self.login()
        V.ctl("/clock", {"advance": 3601})
        for m, p, body in (("GET", "/v1/auth/token/lookup-self", None),
                           ("PUT", "/v1/auth/token/renew-self", {}),
                           ("PUT", "/v1/pki/issue/client", {"common_name": "a"}),
                           ("GET", "/v1/secret/data/app/p12", None)):
            st, _, b = V.req(m, p, body, token=t)
            self.assertEqual(st, 403, p)
            self.assertEqual(b["errors"],
                             ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"])
        V.ctl("/config", {"legacy_invalid_token": True})
        st, _, b = V.req("GET", "/v1/auth/token/lookup-self", token=t)
        self.assertEqual(b["errors"], ["1 error occurred:\n\t* permission denied\n\n"])
        V.ctl("/config", {"error_style": "bare"})
        st, _, b = V.req("GET", "/v1/auth/token/lookup-self", token=t)
        self.assertEqual(b["errors"], ["permission denied"])

    def test_expire_and_revoke_via_control(self):
        t, _ = self.login()
        V.ctl("/token/expire", {"token": t})
        self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token=t), 403,
                       "invalid token", exact=False)
        t, b = self.login()
        V.ctl("/token/revoke", {"accessor": b["auth"]["accessor"]})
        self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token=t), 403,
                       "invalid token", exact=False)
        t, _ = self.login()
        st, _, b = V.req("PUT", "/v1/auth/token/revoke-self", {}, token=t)
        self.assertEqual((st, b), (204, None))
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token=t)[0], 403)

    def test_token_num_uses(self):
        t = V.ctl("/token/create", {"ttl": 60, "num_uses": 2})["token"]
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token=t)[0], 200)
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token=t)[0], 200)
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token=t)[0], 403)

    def test_policy_denied(self):
        V.ctl("/config", {"policies": {"pki-client": ["pki/issue/client"]}})
        t, _ = self.login()
        st, _, b = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a"}, token=t)
        self.assertEqual(st, 200, b)
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token=t)[0], 200)
        self.assertErr(V.req("GET", "/v1/secret/data/app/p12", token=t), 403,
                       "1 error occurred:\n\t* permission denied\n\n")
        V.ctl("/config", {"error_style": "bare"})
        self.assertErr(V.req("GET", "/v1/secret/data/app/p12", token=t), 403,
                       "permission denied")


# ---------------------------------------------------------------- §3 PKI

class TestPKI(Base):
    def issue(self, role, body, token="root", path=None, status=200):
        st, h, b = V.req("PUT", path or "/v1/pki/issue/" + role, body, token=token)
        self.assertEqual(st, status, b)
        return b

    def verify(self, cert, chain):
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
            f.write("\n".join(chain) + "\n")
        try:
            root = V.info["pki_root_file"]
            untrusted = [c for c in chain if not self._self_signed(c)]
            with open(f.name, "w") as g:
                g.write("\n".join(untrusted) + "\n")
            rc, out = openssl("verify", "-CAfile", root, "-untrusted", f.name,
                              input_bytes=cert.encode())
            return rc, out
        finally:
            os.unlink(f.name)

    def _self_signed(self, pem):
        rc, out = openssl("x509", "-noout", "-subject", "-issuer", input_bytes=pem.encode())
        lines = [ln.split("=", 1)[1] for ln in out.strip().splitlines()]
        return lines[0] == lines[1]

    def test_issue_envelope_and_cert(self):
        t, _ = self.login()
        now = V.ctl("/clock")["now"]
        b = self.issue("client", {"common_name": "svc.example.com", "ttl": "1h",
                                  "alt_names": "b.example.com,c.example.com",
                                  "ip_sans": ["127.0.0.1"]}, token=t)
        self.assertEnvelope(b)
        self.assertEqual((b["lease_id"], b["lease_duration"], b["renewable"]), ("", 0, False))
        self.assertIsNone(b["auth"])
        self.assertIsNone(b["warnings"])
        d = b["data"]
        self.assertEqual(set(d), {"certificate", "issuing_ca", "ca_chain", "private_key",
                                  "private_key_type", "serial_number", "expiration"})
        for k in ("certificate", "issuing_ca", "private_key"):
            self.assertFalse(d[k].endswith("\n"), k)
        self.assertTrue(d["certificate"].startswith("-----BEGIN CERTIFICATE-----\n"))
        self.assertIsInstance(d["ca_chain"], list)
        self.assertEqual(len(d["ca_chain"]), 2)
        self.assertEqual(d["ca_chain"][0], d["issuing_ca"])
        self.assertTrue(self._self_signed(d["ca_chain"][1]))
        self.assertEqual(d["private_key_type"], "ec")
        self.assertTrue(d["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----"))
        self.assertRegex(d["serial_number"], SERIAL)
        self.assertIsInstance(d["expiration"], int)
        nb, na, serial = cert_dates(d["certificate"])
        self.assertEqual(d["expiration"], na)
        self.assertEqual(serial, d["serial_number"].replace(":", ""))
        self.assertEqual(na - nb, 3600 + 30)
        self.assertTrue(abs(na - (now + 3600)) <= 2)
        rc, out = self.verify(d["certificate"], d["ca_chain"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))
        rc, text = openssl("x509", "-noout", "-text", input_bytes=d["certificate"].encode())
        self.assertIn("Subject: CN = svc.example.com", text)
        self.assertIn("DNS:svc.example.com, DNS:b.example.com, DNS:c.example.com, "
                      "IP Address:127.0.0.1", text)
        eku = text.split("X509v3 Extended Key Usage:")[1].splitlines()[1].strip()
        self.assertEqual(eku, "TLS Web Client Authentication")
        rc, out = openssl("verify", "-purpose", "sslclient", "-CAfile", V.info["pki_root_file"],
                          "-untrusted", V.info["pki_chain_file"],
                          input_bytes=d["certificate"].encode())
        self.assertEqual(rc, 0, out)

    def test_rsa_pkcs1_and_pkcs8(self):
        d = self.issue("rsa", {"common_name": "r.example"})["data"]
        self.assertEqual(d["private_key_type"], "rsa")
        self.assertTrue(d["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----"))
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))
        d = self.issue("rsa", {"common_name": "r.example", "private_key_format": "pkcs8"})["data"]
        self.assertTrue(d["private_key"].startswith("-----BEGIN PRIVATE KEY-----"))
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))

    def test_web_role_server_and_client_eku_and_domains(self):
        d = self.issue("web", {"common_name": "a.example.com"})["data"]
        rc, text = openssl("x509", "-noout", "-text", input_bytes=d["certificate"].encode())
        self.assertIn("TLS Web Server Authentication, TLS Web Client Authentication", text)
        self.assertErr(V.req("PUT", "/v1/pki/issue/web", {"common_name": "evil.org"},
                             token="root"), 400, "common name evil.org not allowed by this role")
        self.assertErr(V.req("PUT", "/v1/pki/issue/web", {"common_name": "a.example.com",
                                                          "alt_names": "x.evil.org"},
                             token="root"), 400,
                       "subject alternate name x.evil.org not allowed by this role")
        self.assertErr(V.req("PUT", "/v1/pki/issue/web", {"common_name": "example.com"},
                             token="root"), 400, "common name example.com not allowed by this role")

    def test_ttl_capping_warning(self):
        now = V.ctl("/clock")["now"]
        b = self.issue("client", {"common_name": "a", "ttl": "48h"})
        self.assertEqual(b["warnings"], ['TTL "48h0m0s" is longer than permitted maxTTL '
                                         '"24h0m0s", so maxTTL is being used'])
        self.assertTrue(abs(b["data"]["expiration"] - (now + 86400)) <= 2)
        b = self.issue("client", {"common_name": "a"})   # role ttl 1h
        self.assertTrue(abs(b["data"]["expiration"] - (now + 3600)) <= 2)
        b = self.issue("client", {"common_name": "a", "ttl": 90})
        self.assertTrue(abs(b["data"]["expiration"] - (now + 90)) <= 2)

    def test_clock_offset_consistent(self):
        V.ctl("/clock", {"advance": 86400 * 3})
        now = V.ctl("/clock")["now"]
        d = self.issue("client", {"common_name": "a", "ttl": 60})["data"]
        nb, na, _ = cert_dates(d["certificate"])
        self.assertTrue(abs(na - (now + 60)) <= 2)
        self.assertEqual(na - nb, 90)

    def test_issue_errors(self):
        P = "/v1/pki/issue/"
        self.assertErr(V.req("PUT", P + "nope", {"common_name": "a"}, token="root"), 400,
                       "unknown role: nope")
        self.assertErr(V.req("PUT", P + "client", {"common_name": "a", "format": "p12"},
                             token="root"), 400,
                       'the "format" path parameter must be "pem", "der", or "pem_bundle"')
        self.assertErr(V.req("PUT", P + "any", {"common_name": "a"}, token="root"), 400,
                       'role key type "any" not allowed for issuing certificates without '
                       'providing key_type and/or key_bits request parameters')
        st, _, b = V.req("PUT", P + "client", {}, token="root")
        self.assertEqual(st, 400)
        self.assertIn("common_name", b["errors"][0])
        self.assertErr(V.req("PUT", P + "long", {"common_name": "a", "ttl": "900000h"},
                             token="root"), 400,
                       "cannot satisfy request, as TTL would result in notAfter of", exact=False)
        self.assertErr(V.req("PUT", P + "noip", {"common_name": "a", "ip_sans": "10.0.0.1"},
                             token="root"), 400, None)
        self.assertErr(V.req("PUT", P + "client", {"common_name": "a"}, token="bad"), 403,
                       "invalid token", exact=False)

    def test_truncate_to_ca(self):
        d = self.issue("trunc", {"common_name": "a", "ttl": "900000h"})["data"]
        _, ca_na, _ = cert_dates(d["issuing_ca"])
        self.assertEqual(d["expiration"], ca_na)

    def test_any_key_type_and_uri_sans(self):
        d = self.issue("any", {"common_name": "a", "key_type": "ed25519"})["data"]
        self.assertEqual(d["private_key_type"], "ed25519")
        self.assertTrue(d["private_key"].startswith("-----BEGIN PRIVATE KEY-----"))
        d = self.issue("uri", {"common_name": "a", "uri_sans": "spiffe://td/svc"})["data"]
        rc, text = openssl("x509", "-noout", "-text", input_bytes=d["certificate"].encode())
        self.assertIn("URI:spiffe://td/svc", text)
        self.assertEqual(V.req("PUT", "/v1/pki/issue/uri", {"common_name": "a",
                                                           "uri_sans": "spiffe://other/x"},
                               token="root")[0], 400)

    def test_formats(self):
        d = self.issue("client", {"common_name": "a", "format": "der"})["data"]
        der = base64.b64decode(d["certificate"])
        rc, out = openssl("x509", "-inform", "DER", "-noout", "-subject", input_bytes=der)
        self.assertEqual(rc, 0, out)
        self.assertIn("CN = a", out)
        self.assertEqual(len(d["ca_chain"]), 2)
        b = self.issue("client", {"common_name": "a", "format": "pem_bundle"})["data"]
        self.assertIn("PRIVATE KEY-----", b["certificate"])
        self.assertEqual(b["certificate"].count("BEGIN CERTIFICATE"), 3)
        b = self.issue("client", {"common_name": "a", "remove_roots_from_chain": True})["data"]
        self.assertEqual(len(b["ca_chain"]), 1)
        b = self.issue("client", {"common_name": "a", "exclude_cn_from_sans": "true"})["data"]
        rc, text = openssl("x509", "-noout", "-text", input_bytes=b["certificate"].encode())
        self.assertNotIn("DNS:a", text)

    def test_require_cn_false(self):
        V.ctl("/pki/role", {"name": "nocn", "allow_any_name": True, "require_cn": False,
                            "key_type": "ec"})
        d = self.issue("nocn", {"alt_names": "only.example"})["data"]
        rc, text = openssl("x509", "-noout", "-text", input_bytes=d["certificate"].encode())
        self.assertIn("DNS:only.example", text)
        self.assertNotIn("CN =", text.split("Subject:")[1].splitlines()[0])

    def test_issuer_ref_path(self):
        b = self.issue(None, {"common_name": "a"}, path="/v1/pki/issuer/default/issue/client")
        self.assertIn("certificate", b["data"])

    def test_generate_lease_and_sys_leases(self):
        now = V.ctl("/clock")["now"]
        b = self.issue("leased", {"common_name": "a", "ttl": 300})
        self.assertTrue(b["lease_id"].startswith("pki/issue/leased/"))
        self.assertIs(b["renewable"], False)
        self.assertTrue(298 <= b["lease_duration"] <= 300)
        lid = b["lease_id"]
        self.assertErr(V.req("PUT", "/v1/sys/leases/renew", {"lease_id": lid, "increment": 60},
                             token="root"), 400, "lease is not renewable")
        st, _, l = V.req("PUT", "/v1/sys/leases/lookup", {"lease_id": lid}, token="root")
        self.assertEqual(st, 200)
        self.assertEqual(set(l["data"]), {"id", "issue_time", "expire_time", "last_renewal",
                                          "renewable", "ttl", "path"})
        self.assertEqual(l["data"]["path"], "pki/issue/leased")
        self.assertIsNone(l["data"]["last_renewal"])
        self.assertIs(l["data"]["renewable"], False)
        st, _, _ = V.req("PUT", "/v1/sys/leases/revoke", {"lease_id": lid}, token="root")
        self.assertEqual(st, 204)
        issued = {e["serial_number"]: e for e in V.ctl("/pki/issued")["issued"]}
        self.assertTrue(issued[b["data"]["serial_number"]]["revoked"])
        self.assertErr(V.req("PUT", "/v1/sys/leases/lookup", {"lease_id": lid}, token="root"),
                       400, "invalid lease")

    def test_sys_leases_generic(self):
        lid = V.ctl("/lease", {"path": "database/creds/ro", "ttl": 600,
                               "max_ttl": 900})["lease_id"]
        st, _, b = V.req("PUT", "/v1/sys/leases/renew", {"lease_id": lid, "increment": 300},
                         token="root")
        self.assertEqual((st, b["lease_id"], b["renewable"], b["lease_duration"]),
                         (200, lid, True, 300))
        st, _, b = V.req("PUT", "/v1/sys/leases/renew/" + lid, {"increment": 3600},
                         token="root")
        self.assertEqual(b["lease_duration"], 900)
        self.assertEqual(b["warnings"], ['TTL of "1h" exceeded the effective max_ttl of "15m"; '
                                         'TTL value is capped accordingly'])
        self.assertErr(V.req("PUT", "/v1/sys/leases/renew", {}, token="root"), 400,
                       "lease_id must be specified")
        self.assertErr(V.req("PUT", "/v1/sys/leases/renew", {"lease_id": "x/y"}, token="root"),
                       400, "lease not found")
        self.assertErr(V.req("PUT", "/v1/sys/leases/renew", {"lease_id": "auth/approle/login/x"},
                             token="root"), 400, "tokens cannot be renewed through this endpoint")
        V.ctl("/clock", {"advance": 1000})
        self.assertErr(V.req("PUT", "/v1/sys/leases/renew", {"lease_id": lid}, token="root"),
                       400, "lease expired")

    def test_sign_csr(self):
        td = tempfile.mkdtemp()
        try:
            k, c = os.path.join(td, "k.pem"), os.path.join(td, "r.csr")
            subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", k, "-out", c,
                            "-subj", "/CN=csr.example", "-addext",
                            "subjectAltName=DNS:alt.example"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            csr = open(c).read()
            key = open(k).read()
        finally:
            shutil.rmtree(td)
        b = self.issue(None, {"csr": csr, "ttl": "10m"}, path="/v1/pki/sign/client")
        d = b["data"]
        self.assertEqual(set(d), {"certificate", "issuing_ca", "ca_chain", "serial_number",
                                  "expiration"})
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(key))
        rc, text = openssl("x509", "-noout", "-text", input_bytes=d["certificate"].encode())
        self.assertIn("Subject: CN = csr.example", text)
        self.assertIn("DNS:csr.example, DNS:alt.example", text)
        rc, out = self.verify(d["certificate"], d["ca_chain"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(V.req("PUT", "/v1/pki/sign/client", {"csr": "garbage"},
                               token="root")[0], 400)
        self.assertEqual(V.req("PUT", "/v1/pki/sign/rsa", {"csr": csr}, token="root")[0], 400)

    def test_ca_endpoints_unauthenticated(self):
        chain = open(V.info["pki_chain_file"]).read().strip()
        st, h, raw = V.req("GET", "/v1/pki/ca_chain", raw=True)
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "application/pkix-cert")
        self.assertEqual(raw.decode(), chain)
        self.assertFalse(raw.endswith(b"\n"))
        st, h, b = V.req("GET", "/v1/pki/cert/ca_chain")
        self.assertEqual(b["data"], {"certificate": chain, "ca_chain": chain,
                                     "revocation_time": 0, "revocation_time_rfc3339": ""})
        issuing = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----"
        st, h, b = V.req("GET", "/v1/pki/cert/ca")
        self.assertEqual(b["data"], {"certificate": issuing, "revocation_time": 0,
                                     "revocation_time_rfc3339": ""})
        st, h, raw = V.req("GET", "/v1/pki/ca/pem", raw=True)
        self.assertEqual((h["Content-Type"], raw.decode()),
                         ("application/pem-certificate-chain", issuing))
        st, h, raw = V.req("GET", "/v1/pki/ca", raw=True)
        rc, out = openssl("x509", "-inform", "DER", "-noout", "-subject", input_bytes=raw)
        self.assertEqual(rc, 0)
        self.assertIn("Intermediate", out)
        st, h, b = V.req("GET", "/v1/pki/issuer/default/json")
        self.assertEqual(b["data"]["certificate"], issuing)
        self.assertIsInstance(b["data"]["ca_chain"], list)
        self.assertEqual(len(b["data"]["ca_chain"]), 2)

    def test_revoke(self):
        d = self.issue("client", {"common_name": "a"})["data"]
        st, _, b = V.req("PUT", "/v1/pki/revoke", {"serial_number": d["serial_number"]},
                         token="root")
        self.assertEqual(st, 200, b)
        self.assertEqual(set(b["data"]), {"revocation_time", "revocation_time_rfc3339", "state"})
        self.assertEqual(b["data"]["state"], "revoked")
        self.assertIsInstance(b["data"]["revocation_time"], int)
        self.assertRegex(b["data"]["revocation_time_rfc3339"], RFC3339)
        V.ctl("/clock", {"advance": 10})
        st, _, b2 = V.req("PUT", "/v1/pki/revoke",
                          {"serial_number": d["serial_number"].replace(":", "-")}, token="root")
        self.assertEqual(b2["data"]["revocation_time"], b["data"]["revocation_time"])
        d2 = self.issue("client", {"common_name": "b"})["data"]
        st, _, b = V.req("PUT", "/v1/pki/revoke", {"certificate": d2["certificate"]},
                         token="root")
        self.assertEqual(st, 200)
        self.assertErr(V.req("PUT", "/v1/pki/revoke", {"serial_number": "01:02"}, token="root"),
                       400, "certificate with serial 01:02 not found.")
        self.assertErr(V.req("PUT", "/v1/pki/revoke", {}, token="root"), 400,
                       "The serial number or certificate to revoke must be provided.")
        self.assertErr(V.req("PUT", "/v1/pki/revoke", {"serial_number": "01",
                                                       "certificate": "x"}, token="root"),
                       400, "Must provide either the certificate or the serial to revoke; "
                            "not both.")

    def test_concurrent_issue(self):
        t, _ = self.login()

        def one(i):
            return V.req("PUT", "/v1/pki/issue/client", {"common_name": "c%d" % i, "ttl": 60},
                         token=t)
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(one, range(32)))
        self.assertTrue(all(r[0] == 200 for r in res), [r[0] for r in res])
        self.assertEqual(len({r[2]["data"]["serial_number"] for r in res}), 32)


# ---------------------------------------------------------------- §4 KV

class TestKV(Base):
    def test_kv2_read(self):
        st, _, b = V.req("GET", "/v1/secret/data/app/p12", token="root")
        self.assertEqual(st, 200)
        self.assertEnvelope(b)
        self.assertEqual((b["lease_id"], b["lease_duration"]), ("", 0))
        self.assertEqual(set(b["data"]), {"data", "metadata"})
        self.assertEqual(b["data"]["data"], {"p12": "djM=", "p12_password": "s3cr3t"})
        m = b["data"]["metadata"]
        self.assertEqual(set(m), {"created_time", "custom_metadata", "deletion_time",
                                  "destroyed", "version"})
        self.assertEqual((m["version"], m["deletion_time"], m["destroyed"],
                          m["custom_metadata"]), (3, "", False, None))
        self.assertRegex(m["created_time"], RFC3339)
        b = V.req("GET", "/v1/secret/data/app/p12?version=1", token="root")[2]
        self.assertEqual((b["data"]["data"]["p12_password"], b["data"]["metadata"]["version"]),
                         ("one", 1))
        b = V.req("GET", "/v1/secret/data/app/p12?version=0", token="root")[2]
        self.assertEqual(b["data"]["metadata"]["version"], 3)
        self.assertErr(V.req("GET", "/v1/secret/data/app/none", token="root"), 404)
        self.assertEqual(V.req("GET", "/v1/secret/data/app/none", token="root")[2],
                         {"errors": []})
        self.assertEqual(V.req("GET", "/v1/secret/data/app/p12?version=9", token="root")[2],
                         {"errors": []})

    def test_kv2_bad_path(self):
        st, _, b = V.req("GET", "/v1/secret/app/p12", token="root")
        self.assertEqual(st, 404)
        self.assertIsNone(b["data"])
        self.assertIn("Invalid path for a versioned K/V", b["warnings"][0])

    def test_kv2_write_cas_and_control_put(self):
        st, _, b = V.req("POST", "/v1/secret/data/w/x", {"data": {"a": "1"}}, token="root")
        self.assertEqual(st, 200)
        self.assertEqual(b["data"]["version"], 1)
        self.assertEqual(set(b["data"]), {"created_time", "custom_metadata", "deletion_time",
                                          "destroyed", "version"})
        self.assertErr(V.req("POST", "/v1/secret/data/w/x",
                             {"options": {"cas": 0}, "data": {"a": "2"}}, token="root"),
                       400, "check-and-set parameter did not match the current version")
        st, _, b = V.req("POST", "/v1/secret/data/w/x", {"options": {"cas": 1},
                                                         "data": {"a": "2"}}, token="root")
        self.assertEqual(b["data"]["version"], 2)
        r = V.ctl("/kv/put", {"mount": "secret", "path": "w/x", "data": {"a": "3"}})
        self.assertEqual(r["metadata"]["version"], 3)
        b = V.req("GET", "/v1/secret/data/w/x", token="root")[2]
        self.assertEqual((b["data"]["data"], b["data"]["metadata"]["version"]), ({"a": "3"}, 3))
        self.assertErr(V.req("POST", "/v1/secret/data/w/x", {"nodata": 1}, token="root"), 400,
                       "no data provided")

    def test_kv2_deleted_destroyed(self):
        V.ctl("/kv/put", {"path": "d/x", "data": {"a": "1"}})
        V.ctl("/kv/put", {"path": "d/x", "data": {"a": "2"}})
        V.ctl("/kv/delete", {"path": "d/x"})
        st, _, b = V.req("GET", "/v1/secret/data/d/x", token="root")
        self.assertEqual(st, 404)
        self.assertEnvelope(b)
        self.assertIsNone(b["data"]["data"])
        self.assertRegex(b["data"]["metadata"]["deletion_time"], RFC3339)
        self.assertEqual(b["data"]["metadata"]["version"], 2)
        V.ctl("/kv/destroy", {"path": "d/x", "versions": [1]})
        st, _, b = V.req("GET", "/v1/secret/data/d/x?version=1", token="root")
        self.assertEqual(st, 404)
        self.assertIs(b["data"]["metadata"]["destroyed"], True)
        V.ctl("/kv/undelete", {"path": "d/x", "versions": [2]})
        self.assertEqual(V.req("GET", "/v1/secret/data/d/x", token="root")[0], 200)
        st, _, _ = V.req("DELETE", "/v1/secret/data/d/x", token="root")
        self.assertEqual(st, 204)
        self.assertEqual(V.req("GET", "/v1/secret/data/d/x", token="root")[0], 404)

    def test_kv1(self):
        st, _, b = V.req("GET", "/v1/kv/app/cert", token="root")
        self.assertEqual(st, 200)
        self.assertEnvelope(b)
        self.assertEqual((b["data"], b["lease_duration"], b["lease_id"], b["renewable"]),
                         ({"pem": "x"}, 2764800, "", False))
        b = V.req("GET", "/v1/kv/app/ttl", token="root")[2]
        self.assertEqual(b["lease_duration"], 3600)
        self.assertEqual(V.req("GET", "/v1/kv/app/none", token="root")[2], {"errors": []})
        st, _, _ = V.req("PUT", "/v1/kv/app/new", {"k": "v"}, token="root")
        self.assertEqual(st, 204)
        self.assertEqual(V.req("GET", "/v1/kv/app/new", token="root")[2]["data"], {"k": "v"})
        V.ctl("/kv/put", {"mount": "kv", "path": "app/new", "data": {"k": "w"}})
        self.assertEqual(V.req("GET", "/v1/kv/app/new", token="root")[2]["data"], {"k": "w"})


# ---------------------------------------------------------------- control API

class TestControl(Base):
    def test_fail_next_n(self):
        V.ctl("/fail", {"count": 2, "status": 503, "path": "auth/token/lookup-self"})
        for _ in range(2):
            self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token="root"), 503,
                           "Vault is sealed")
        self.assertEqual(V.req("GET", "/v1/auth/token/lookup-self", token="root")[0], 200)
        V.ctl("/fail", {"count": 1, "status": 500, "errors": ["boom"]})
        self.assertErr(V.req("GET", "/v1/sys/health"), 500, "boom")
        V.ctl("/fail", {"count": 1, "status": 403, "invalid_token": True})
        self.assertErr(V.req("GET", "/v1/auth/token/lookup-self", token="root"), 403,
                       "invalid token", exact=False)

    def test_fail_429_headers(self):
        V.ctl("/fail", {"count": 1, "status": 429, "retry_after": 7, "path": "pki/"})
        st, h, b = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a"}, token="root")
        self.assertEqual(st, 429)
        self.assertEqual(b["errors"], ['request path "pki/issue/client": rate limit quota '
                                       'exceeded'])
        self.assertEqual(h["Retry-After"], "7")
        for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            self.assertIn(k, h)

    def test_latency(self):
        V.ctl("/latency", {"seconds": 0.6, "count": 1})
        t0 = time.time()
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.6)
        t0 = time.time()
        V.req("GET", "/v1/sys/health")
        self.assertLess(time.time() - t0, 0.5)

    def test_down_and_up(self):
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)
        V.ctl("/down", {})
        with self.assertRaises(urllib.error.URLError):
            V.req("GET", "/v1/sys/health", timeout=3)
        s = socket.socket()
        self.assertNotEqual(s.connect_ex(("127.0.0.1", V.port)), 0)
        s.close()
        r = V.ctl("/up", {})
        self.assertEqual(r["port"], V.port)
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)
        V.ctl("/down", {"seconds": 1})
        with self.assertRaises(urllib.error.URLError):
            V.req("GET", "/v1/sys/health", timeout=3)
        time.sleep(1.5)
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)

    def test_garbage_reset_truncated(self):
        V.ctl("/fail", {"count": 1, "mode": "garbage", "path": "pki/issue"})
        st, h, raw = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a"}, token="root",
                           raw=True)
        self.assertEqual(st, 200)
        with self.assertRaises(ValueError):
            json.loads(raw)
        V.ctl("/fail", {"count": 1, "mode": "reset"})
        with self.assertRaises(Exception):
            V.req("GET", "/v1/sys/health", timeout=5)
        V.ctl("/fail", {"count": 1, "mode": "truncated"})
        with self.assertRaises(Exception):
            V.req("GET", "/v1/sys/health", timeout=5)
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)

    def test_mismatch(self):
        V.ctl("/fail", {"count": 1, "mode": "mismatch"})
        d = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a"}, token="root")[2]["data"]
        self.assertNotEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))
        d = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a"}, token="root")[2]["data"]
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))

    def test_expired_and_wrong_ca(self):
        V.ctl("/fail", {"count": 1, "mode": "expired"})
        now = V.ctl("/clock")["now"]
        d = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a", "ttl": 60},
                  token="root")[2]["data"]
        self.assertLess(d["expiration"], now)
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))
        V.ctl("/fail", {"count": 1, "mode": "wrong_ca"})
        d = V.req("PUT", "/v1/pki/issue/client", {"common_name": "a"}, token="root")[2]["data"]
        rc, out = openssl("verify", "-CAfile", V.info["pki_root_file"], "-untrusted",
                          V.info["pki_chain_file"], input_bytes=d["certificate"].encode())
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(pubkey_of_cert(d["certificate"]), pubkey_of_key(d["private_key"]))

    def test_untrusted_tls_then_normal(self):
        V.ctl("/tls", {"mode": "untrusted"})
        with self.assertRaises(urllib.error.URLError) as cm:
            V.req("GET", "/v1/sys/health", timeout=5)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(cm.exception))
        V.ctl("/tls", {"mode": "normal"})
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)

    def test_redirect_rule(self):
        V.ctl("/fail", {"count": 1, "status": 307,
                        "headers": {"Location": "https://127.0.0.1:1/v1/sys/health"}})
        req = urllib.request.Request("https://127.0.0.1:%d/v1/sys/health" % V.port)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(
            context=V.ctx))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            opener.open(req, timeout=5)
        self.assertEqual(cm.exception.code, 307)
        self.assertEqual(cm.exception.headers["Location"], "https://127.0.0.1:1/v1/sys/health")

    def test_skip_and_method_filter(self):
        V.ctl("/fail", {"count": 1, "skip": 1, "status": 502, "method": "GET",
                        "path": "sys/health"})
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 502)
        self.assertEqual(V.req("GET", "/v1/sys/health")[0], 200)

    def test_request_log_and_counters(self):
        V.ctl("/requests", method="DELETE")
        t, _ = self.login()
        V.req("PUT", "/v1/auth/token/renew-self", {"increment": 60}, token=t,
              headers={"X-Vault-Request": "true", "X-Vault-Namespace": ""})
        log = V.ctl("/requests")["requests"]
        self.assertEqual([(r["method"], r["path"], r["status"]) for r in log],
                         [("PUT", "/v1/auth/approle/login", 200),
                          ("PUT", "/v1/auth/token/renew-self", 200)])
        self.assertEqual(log[0]["body"], {"role_id": "sidecar-role-id",
                                          "secret_id": "sidecar-secret-id"})
        self.assertEqual(log[1]["headers"]["X-Vault-Token"], t)
        self.assertEqual(log[1]["headers"]["X-Vault-Request"], "true")
        self.assertEqual(log[1]["body"], {"increment": 60})
        since = log[-1]["seq"]
        V.req("GET", "/v1/sys/health")
        self.assertEqual(len(V.ctl("/requests?since=%d" % since)["requests"]), 1)
        c = V.ctl("/counters")["counters"]
        self.assertEqual(c["PUT auth/token/renew-self"], 1)

    def test_issued_list(self):
        d = V.req("PUT", "/v1/pki/issue/client", {"common_name": "listed"},
                  token="root")[2]["data"]
        issued = V.ctl("/pki/issued")["issued"]
        e = [x for x in issued if x["serial_number"] == d["serial_number"]][0]
        self.assertEqual((e["common_name"], e["not_after"], e["revoked"]),
                         ("listed", d["expiration"], False))


def main():
    global V
    V = Vaultd()
    try:
        suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
        res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    finally:
        V.stop()
    failed = len(res.failures) + len(res.errors)
    passed = res.testsRun - failed - len(res.skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
