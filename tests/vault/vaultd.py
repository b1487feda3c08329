#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vaultd: a Vault HTTP API test double for mtlsd's tests.

Implements the subset of the Vault HTTP API described in
/work/shared/vault-api.md (AppRole login, token lookup/renew/revoke-self,
PKI issue/sign/CA/revoke, KV v1/v2, sys/leases, sys/health) over HTTPS on
loopback, plus a plain-HTTP control API (/_test/...) on a second loopback
port so tests can inject failures, latency, outages, token expiry, KV
versions, a clock offset, and read the request log.

Python 3 standard library only; certificates are made with the openssl CLI.
See README.md in this directory for flags, config file and control API.
"""

import argparse
import base64
import datetime
import fnmatch
import http.server
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

OPENSSL = os.environ.get("OPENSSL", "openssl")
SYS_DEFAULT_TTL = 2764800  # 768h, mount default lease TTL
SYS_MAX_TTL = 2764800      # 768h, mount/system max lease TTL
MAX_BODY = 32 * 1024 * 1024
VAULT_VERSION = "1.17.0"

KV2_BAD_PATH_WARNING = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the "
    "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' "
    "for this operation.")


# --------------------------------------------------------------------------
# small helpers

class VaultError(Exception):
    """An error answer: status + errors list (+ optional headers/warnings)."""

    def __init__(self, status, errors, headers=None):
        super().__init__("%d %r" % (status, errors))
        self.status = status
        self.errors = list(errors) if isinstance(errors, (list, tuple)) else [errors]
        self.headers = headers or {}


def bad(msg):
    return VaultError(400, [msg])


def multierror(msgs):
    n = len(msgs)
    head = "1 error occurred:" if n == 1 else "%d errors occurred:" % n
    return head + "\n" + "".join("\t* %s\n" % m for m in msgs) + "\n"


def go_duration(sec):
    """Go time.Duration.String() for a whole number of seconds."""
    sec = int(sec)
    if sec == 0:
        return "0s"
    neg = sec < 0
    sec = abs(sec)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    if h:
        out = "%dh%dm%ds" % (h, m, s)
    elif m:
        out = "%dm%ds" % (m, s)
    else:
        out = "%ds" % s
    return ("-" if neg else "") + out


def human_duration(sec):
    """sdk/framework/lease.go humanDuration."""
    if int(sec) == 0:
        return "0s"
    s = go_duration(sec)
    if s.endswith("m0s"):
        s = s[:-2]
    idx = s.find("h0m")
    if idx > 0:
        s = s[:idx + 1] + s[idx + 3:]
    return s


_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(v, name="ttl"):
    """duration-seconds: int, "90", "30s", "1h30m", "2d". Returns int seconds."""
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise bad("error converting input %s for field %s" % (v, json.dumps(name)))
    if isinstance(v, (int, float)):
        if v < 0:
            raise bad("cannot provide negative value for %s" % json.dumps(name))
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if re.fullmatch(r"-?\d+", s):
            n = int(s)
            if n < 0:
                raise bad("cannot provide negative value for %s" % json.dumps(name))
            return n
        pos = 0
        total = 0.0
        mult = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
                "h": 3600, "d": 86400}
        for mt in _DUR_RE.finditer(s):
            if mt.start() != pos:
                break
            total += float(mt.group(1)) * mult[mt.group(2)]
            pos = mt.end()
        if pos == len(s) and s:
            return int(total)
    raise bad("error converting input %s for field %s: time: invalid duration %s"
              % (json.dumps(v), json.dumps(name), json.dumps(v)))


def parse_bool(v, name):
    if isinstance(v, bool):
        return v
    if v is None or v == "":
        return False
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str) and v.lower() in ("true", "1", "t"):
        return True
    if isinstance(v, str) and v.lower() in ("false", "0", "f"):
        return False
    raise bad("error converting input %s for field %s" % (json.dumps(v), json.dumps(name)))


def parse_slice(v):
    """comma-string-slice: "a,b" or ["a","b"]."""
    if v is None or v == "":
        return []
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(parse_slice(x) if isinstance(x, str) and "," in x else [str(x)])
        return [x.strip() for x in out if str(x).strip()]
    return [x.strip() for x in str(v).split(",") if x.strip()]


def rfc3339(ts, nano=True):
    """RFC3339Nano like Go: fraction with trailing zeros trimmed, 'Z'."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if nano and dt.microsecond:
        base += ("." + "%06d" % dt.microsecond).rstrip("0")
    return base + "Z"


def go_time(ts):
    """Go time.Time.String() (UTC) as used in PKI error messages."""
    dt = datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def rand_token(n=24):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def pem_body_der(pem):
    lines = [ln for ln in pem.strip().splitlines() if not ln.startswith("-----")]
    return base64.b64decode("".join(lines))


def split_pems(text):
    return re.findall(r"-----BEGIN [^-]+-----.*?-----END [^-]+-----", text, re.S)


def fmt_serial(n):
    b = n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")
    return ":".join("%02x" % x for x in b)


def norm_serial(s):
    return s.strip().lower().replace("-", ":")


def run(cmd, input_bytes=None, cwd=None):
    p = subprocess.run(cmd, input=input_bytes, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd[:3]),
                                               p.stderr.decode(errors="replace")[-500:]))
    return p.stdout


def atomic_write(path, text, mode=0o644):
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# certificate authority (openssl CLI)

CA_CNF = """[ca]
default_ca = d
[d]
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
certificate = {cert}
private_key = {key}
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
email_in_dn = no
[p]
commonName = optional
"""


def subj_escape(cn):
    return "/CN=" + re.sub(r"([/+,=\\])", r"\\\1", cn) if cn else "/"


class CertInfo:
    def __init__(self, pem):
        self.pem = pem.strip()
        out = run([OPENSSL, "x509", "-noout", "-enddate", "-startdate", "-serial",
                   "-subject", "-issuer", "-nameopt", "RFC2253"],
                  input_bytes=self.pem.encode()).decode()
        f = dict(ln.split("=", 1) for ln in out.strip().splitlines())
        self.not_after = _openssl_date(f["notAfter"])
        self.not_before = _openssl_date(f["notBefore"])
        self.serial = fmt_serial(int(f["serial"], 16))
        self.subject = f["subject"]
        self.issuer = f["issuer"]
        self.self_signed = self.subject == self.issuer


def _openssl_date(s):
    return int(datetime.datetime.strptime(s.strip(), "%b %d %H:%M:%S %Y GMT")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def make_ca(dirpath, name, cn, parent=None, days=3650, now=None):
    """Create (or reuse) a CA key+cert in dirpath/name.{key,pem}."""
    with _CA_LOCK:
        return _make_ca(dirpath, name, cn, parent, days)


_CA_LOCK = threading.Lock()


def _make_ca(dirpath, name, cn, parent, days):
    key = os.path.join(dirpath, name + ".key")
    cert = os.path.join(dirpath, name + ".pem")
    if os.path.exists(key) and os.path.exists(cert):
        return cert, key
    run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", key])
    os.chmod(key, 0o600)
    ext = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
           "subjectKeyIdentifier=hash\n")
    with tempfile.TemporaryDirectory() as td:
        extf = os.path.join(td, "ext.cnf")
        if parent is None:
            with open(extf, "w") as f:
                f.write("[req]\ndistinguished_name=dn\n[dn]\n[e]\n" + ext)
            run([OPENSSL, "req", "-x509", "-new", "-key", key, "-subj", "/CN=" + cn,
                 "-days", str(days), "-config", extf, "-extensions", "e", "-sha256",
                 "-set_serial", str(secrets.randbits(120) | 1 << 119), "-out", cert])
        else:
            csr = os.path.join(td, "r.csr")
            run([OPENSSL, "req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr])
            with open(extf, "w") as f:
                f.write("[e]\n" + ext + "authorityKeyIdentifier=keyid\n")
            run([OPENSSL, "x509", "-req", "-in", csr, "-CA", parent[0], "-CAkey", parent[1],
                 "-set_serial", str(secrets.randbits(120) | 1 << 119), "-days", str(days),
                 "-extfile", extf, "-extensions", "e", "-sha256", "-out", cert])
    return cert, key


def sign_leaf(ca_cert, ca_key, csr_pem, cn, ext_lines, serial, not_before, not_after):
    """Sign csr_pem with openssl ca, explicit dates (unix seconds). Returns PEM."""
    td = tempfile.mkdtemp(prefix="vaultd-ca-")
    try:
        open(os.path.join(td, "index.txt"), "w").close()
        with open(os.path.join(td, "serial"), "w") as f:
            f.write(serial.replace(":", "") + "\n")
        with open(os.path.join(td, "ca.cnf"), "w") as f:
            f.write(CA_CNF.format(d=td, cert=ca_cert, key=ca_key))
        with open(os.path.join(td, "ext.cnf"), "w") as f:
            f.write("[e]\n" + "\n".join(ext_lines) + "\n")
        with open(os.path.join(td, "r.csr"), "w") as f:
            f.write(csr_pem)
        d = lambda ts: time.strftime("%Y%m%d%H%M%SZ", time.gmtime(ts))
        run([OPENSSL, "ca", "-batch", "-notext", "-config", os.path.join(td, "ca.cnf"),
             "-in", os.path.join(td, "r.csr"), "-out", os.path.join(td, "c.pem"),
             "-extfile", os.path.join(td, "ext.cnf"), "-extensions", "e",
             "-startdate", d(not_before), "-enddate", d(not_after),
             "-subj", subj_escape(cn), "-utf8"])
        with open(os.path.join(td, "c.pem")) as f:
            return split_pems(f.read())[0]
    finally:
        shutil.rmtree(td, ignore_errors=True)


def new_key_and_csr(key_type, key_bits):
    """Returns (pkcs8 key pem, csr pem)."""
    if key_type == "rsa":
        newkey = ["-newkey", "rsa:%d" % (key_bits or 2048)]
    elif key_type == "ec":
        curve = {224: "P-224", 256: "P-256", 384: "P-384", 521: "P-521"}.get(key_bits or 256, "P-256")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + curve]
    elif key_type == "ed25519":
        newkey = ["-newkey", "ed25519"]
    else:
        raise bad("unsupported key type %s" % key_type)
    td = tempfile.mkdtemp(prefix="vaultd-key-")
    try:
        k = os.path.join(td, "k.pem")
        c = os.path.join(td, "r.csr")
        run([OPENSSL, "req", "-new"] + newkey + ["-nodes", "-keyout", k, "-subj", "/CN=x",
                                                  "-out", c])
        with open(k) as f:
            key = f.read().strip()
        with open(c) as f:
            csr = f.read().strip()
        return key, csr
    finally:
        shutil.rmtree(td, ignore_errors=True)


def key_traditional(pkcs8_pem, key_type):
    if key_type == "ed25519":
        return pkcs8_pem
    return run([OPENSSL, "pkey", "-traditional"], input_bytes=pkcs8_pem.encode()).decode().strip()


def parse_csr(csr_pem):
    """Verify and parse a CSR: returns dict(cn, dns, emails, ips, uris, key_type, key_bits)."""
    try:
        out = run([OPENSSL, "req", "-noout", "-text", "-verify", "-nameopt", "RFC2253"],
                  input_bytes=csr_pem.encode()).decode(errors="replace")
    except Exception:
        raise bad("certificate request could not be parsed")
    info = {"cn": "", "dns": [], "emails": [], "ips": [], "uris": [], "key_type": "",
            "key_bits": 0}
    m = re.search(r"Subject:\s*(.*)", out)
    if m:
        cnm = re.search(r"(?:^|,)CN=((?:\\.|[^,])*)", m.group(1))
        if cnm:
            info["cn"] = re.sub(r"\\(.)", r"\1", cnm.group(1))
    m = re.search(r"Public Key Algorithm:\s*(\S+)", out)
    alg = m.group(1) if m else ""
    info["key_type"] = {"rsaEncryption": "rsa", "id-ecPublicKey": "ec",
                        "ED25519": "ed25519"}.get(alg, alg)
    m = re.search(r"Public-Key:\s*\((\d+) bit\)", out)
    if m:
        info["key_bits"] = int(m.group(1))
    m = re.search(r"X509v3 Subject Alternative Name:[^\n]*\n\s*([^\n]*)", out)
    if m:
        for item in m.group(1).split(", "):
            t, _, v = item.partition(":")
            if t == "DNS":
                info["dns"].append(v)
            elif t == "email":
                info["emails"].append(v)
            elif t == "IP Address":
                info["ips"].append(v)
            elif t == "URI":
                info["uris"].append(v)
    return info


# --------------------------------------------------------------------------
# state

class Token:
    def __init__(self, **kw):
        self.id = kw["id"]
        self.accessor = kw.get("accessor", "")
        self.policies = kw.get("policies", ["default"])
        self.meta = kw.get("meta")
        self.ttl = kw.get("ttl", 0)               # creation ttl
        self.base_ttl = kw.get("base_ttl", self.ttl)  # backend (role) ttl used on renew 0
        self.max_ttl = kw.get("max_ttl", 0)       # backend (role) max ttl
        self.explicit_max_ttl = kw.get("explicit_max_ttl", 0)
        self.period = kw.get("period", 0)
        self.renewable = kw.get("renewable", True)
        self.type = kw.get("type", "service")
        self.num_uses = kw.get("num_uses", 0)
        self.path = kw.get("path", "auth/token/create")
        self.display_name = kw.get("display_name", "token")
        self.entity_id = kw.get("entity_id", "")
        self.orphan = kw.get("orphan", True)
        self.namespace = kw.get("namespace", "")
        self.creation_time = kw["now"]
        self.expire = (kw["now"] + self.ttl) if self.ttl else None
        self.last_renewal = None
        self.revoked = False
        self.use_exhausted = False

    def valid(self, now):
        if self.revoked or self.use_exhausted:
            return False
        return self.expire is None or now < self.expire


class Lease:
    def __init__(self, lease_id, path, now, ttl, renewable, max_ttl=0, kind="generic",
                 serial=None):
        self.id = lease_id
        self.path = path
        self.issue = now
        self.expire = now + ttl
        self.renewable = renewable
        self.max_ttl = max_ttl
        self.base_ttl = ttl
        self.last_renewal = None
        self.kind = kind
        self.serial = serial
        self.revoked = False


ROLE_DEFAULTS = {
    "ttl": 0, "max_ttl": 0, "allow_any_name": False, "allowed_domains": [],
    "allow_subdomains": False, "allow_bare_domains": False, "allow_glob_domains": False,
    "allow_localhost": True, "allow_ip_sans": True, "allowed_uri_sans": [],
    "allowed_other_sans": [], "server_flag": True, "client_flag": True,
    "key_type": "rsa", "key_bits": 0, "generate_lease": False, "not_before_duration": 30,
    "require_cn": True, "use_csr_common_name": True, "use_csr_sans": True,
    "leaf_not_after_behavior": "err", "allow_wildcard_certificates": True,
}

DEFAULT_CONFIG = {
    "root_token": "root",
    "tokens": {},
    "approle": {
        "sidecar": {"role_id": "sidecar-role-id",
                    "secret_ids": {"sidecar-secret-id": {}},
                    "token_ttl": 3600, "token_max_ttl": 0,
                    "token_policies": ["pki-client"]},
    },
    "pki": {"pki": {"roles": {
        "client": {"allow_any_name": True, "server_flag": False, "client_flag": True,
                   "ttl": 3600, "max_ttl": 86400, "key_type": "ec", "key_bits": 256},
        "server": {"allow_any_name": True, "server_flag": True, "client_flag": False,
                   "ttl": 3600, "max_ttl": 86400, "key_type": "ec", "key_bits": 256},
        "web": {"allowed_domains": ["example.com"], "allow_subdomains": True,
                "ttl": 3600, "max_ttl": 86400},
    }}},
    "kv": {"secret": {"version": 2, "data": {}}, "kv": {"version": 1, "data": {}}},
    "policies": None,
    "namespaces": [],
    "options": {},
}

OPTION_DEFAULTS = {
    "legacy_invalid_token": False,   # 403 with only "permission denied"
    "error_style": "multierror",     # "multierror" | "bare" for permission denied
    "require_request_header": False, # 412 without X-Vault-Request (Agent listener)
    "mount_type": True,              # include mount_type in envelopes (Vault, not OpenBao)
    "echo_namespace": True,          # echo X-Vault-Namespace in responses (OpenBao)
    "token_prefix": "hvs.",          # service token prefix ("s." for legacy/OpenBao)
    "health_mode": "active",         # active|standby|perfstandby|drsecondary|uninit
}


class State:
    def __init__(self, cfg, workdir):
        self.lock = threading.RLock()
        self.cfg = cfg
        self.workdir = workdir
        self.clock_offset = 0.0
        self.sealed = False
        self.opts = dict(OPTION_DEFAULTS)
        self.opts.update(cfg.get("options") or {})
        self.tokens = {}
        self.leases = {}
        self.approles = {}
        self.pki = {}
        self.kv = {}
        self.policies = cfg.get("policies")
        self.namespaces = [n.strip("/") for n in (cfg.get("namespaces") or [])]
        self.rules = []
        self.rule_seq = 0
        self.requests = []
        self.req_seq = 0
        self.counters = {}
        self.issued = {}        # serial -> dict
        self.revoked = {}       # serial -> revocation time
        self.entity_ids = {}
        now = self.now()
        rt = cfg.get("root_token")
        if rt:
            self.tokens[rt] = Token(id=rt, accessor=str(uuid.uuid4()), policies=["root"],
                                    ttl=0, renewable=False, path="auth/token/root",
                                    display_name="root", now=now)
        for tid, t in (cfg.get("tokens") or {}).items():
            self.create_token(dict(t, id=tid))
        for name, r in (cfg.get("approle") or {}).items():
            self.set_approle(name, r)
        for mount, m in (cfg.get("pki") or {}).items():
            self.pki[mount.strip("/")] = {"roles": {}}
            for rn, r in (m.get("roles") or {}).items():
                self.set_pki_role(mount, rn, r)
        for mount, m in (cfg.get("kv") or {}).items():
            self.kv[mount.strip("/")] = {"version": int(m.get("version", 2)), "data": {}}
            for p, v in (m.get("data") or {}).items():
                vers = v if isinstance(v, list) else [v]
                for d in vers:
                    self.kv_put(mount, p, d)

    def now(self):
        return time.time() + self.clock_offset

    # tokens
    def create_token(self, t):
        now = self.now()
        typ = t.get("type", "service")
        tid = t.get("id") or ((self.opts["token_prefix"] if typ == "service" else "hvb.")
                              + rand_token(90 if typ == "batch" else 24))
        pol = t.get("policies", ["default"])
        if "root" not in pol and not t.get("no_default_policy") and "default" not in pol:
            pol = ["default"] + list(pol)
        ttl = parse_duration(t.get("ttl", 0))
        expl = parse_duration(t.get("explicit_max_ttl", 0))
        max_ttl = parse_duration(t.get("max_ttl", 0))
        period = parse_duration(t.get("period", 0))
        eff_max = min([x for x in (max_ttl, expl, SYS_MAX_TTL) if x > 0])
        if period:
            ttl = period
        elif ttl > eff_max:
            ttl = eff_max
        tok = Token(id=tid, accessor="" if typ == "batch" else str(uuid.uuid4()),
                    policies=sorted(set(pol)), meta=t.get("meta"), ttl=ttl,
                    base_ttl=ttl, max_ttl=max_ttl, explicit_max_ttl=expl, period=period,
                    renewable=(typ != "batch" and parse_bool(t.get("renewable", True), "renewable")),
                    type=typ, num_uses=int(t.get("num_uses", 0)),
                    path=t.get("path", "auth/token/create"),
                    display_name=t.get("display_name", "token"),
                    entity_id=t.get("entity_id", ""), namespace=t.get("namespace", ""),
                    now=now)
        with self.lock:
            self.tokens[tid] = tok
        return tok

    def find_token(self, key):
        with self.lock:
            if key in self.tokens:
                return self.tokens[key]
            for t in self.tokens.values():
                if t.accessor and t.accessor == key:
                    return t
        return None

    def set_approle(self, name, r):
        with self.lock:
            old = self.approles.get(name, {})
            role = dict({"role_id": str(uuid.uuid4()), "bind_secret_id": True,
                         "secret_ids": {}, "token_ttl": 0, "token_max_ttl": 0,
                         "token_policies": [], "token_type": "service", "period": 0,
                         "token_num_uses": 0, "token_explicit_max_ttl": 0,
                         "secret_id_num_uses": 0, "secret_id_ttl": 0,
                         "secret_id_bound_cidrs": [], "renewable": True}, **old)
            sids = dict(role["secret_ids"])
            for k, v in r.items():
                if k == "secret_ids":
                    continue
                role[k] = v
            for sid, sv in (r.get("secret_ids") or {}).items():
                sids[sid] = self._secret_id_entry(role, sv or {})
            role["secret_ids"] = sids
            self.approles[name] = role
            self.entity_ids.setdefault(name, str(uuid.uuid4()))
            return role

    def _secret_id_entry(self, role, sv):
        now = self.now()
        ttl = parse_duration(sv.get("ttl", role.get("secret_id_ttl", 0)))
        return {"num_uses": int(sv.get("num_uses", role.get("secret_id_num_uses", 0))),
                "uses": 0, "expire": (now + ttl) if ttl else None,
                "cidr_list": parse_slice(sv.get("cidr_list", role.get("secret_id_bound_cidrs", []))),
                "creation_time": now}

    def add_secret_id(self, name, sv):
        with self.lock:
            role = self.approles.get(name)
            if role is None:
                raise bad("role %s does not exist" % name)
            sid = sv.get("secret_id") or str(uuid.uuid4())
            role["secret_ids"][sid] = self._secret_id_entry(role, sv)
            return sid

    def set_pki_role(self, mount, name, r):
        mount = mount.strip("/")
        with self.lock:
            m = self.pki.setdefault(mount, {"roles": {}})
            role = dict(ROLE_DEFAULTS, **m["roles"].get(name, {}))
            role.update(r)
            role["ttl"] = parse_duration(role["ttl"])
            role["max_ttl"] = parse_duration(role["max_ttl"])
            role["not_before_duration"] = parse_duration(role["not_before_duration"])
            for k in ("allowed_domains", "allowed_uri_sans", "allowed_other_sans"):
                role[k] = parse_slice(role[k])
            m["roles"][name] = role
            return role

    # kv
    def kv_put(self, mount, path, data, cas=None, custom_metadata=None):
        mount = mount.strip("/")
        path = path.strip("/")
        with self.lock:
            m = self.kv.get(mount)
            if m is None:
                m = self.kv[mount] = {"version": 2, "data": {}}
            if m["version"] == 1:
                m["data"][path] = data
                return None
            ent = m["data"].setdefault(path, {"versions": [], "custom_metadata": None})
            cur = len(ent["versions"])
            if cas is not None and int(cas) != cur:
                raise bad("check-and-set parameter did not match the current version")
            if custom_metadata is not None:
                ent["custom_metadata"] = custom_metadata
            v = {"data": data, "created_time": self.now(), "deletion_time": None,
                 "destroyed": False}
            ent["versions"].append(v)
            return self.kv_meta(ent, cur + 1)

    def kv_meta(self, ent, version):
        v = ent["versions"][version - 1]
        return {"created_time": rfc3339(v["created_time"]),
                "custom_metadata": ent["custom_metadata"],
                "deletion_time": rfc3339(v["deletion_time"]) if v["deletion_time"] else "",
                "destroyed": v["destroyed"], "version": version}


# --------------------------------------------------------------------------
# the Vault API

class Vault:
    def __init__(self, state, pki_ca):
        self.s = state
        self.ca = pki_ca  # dict: issuing (cert,key), chain [pem...], issuer_id, ...

    # --- helpers
    def envelope(self, data=None, auth=None, warnings=None, lease_id="", renewable=False,
                 lease_duration=0, mount_type=None):
        env = {"request_id": str(uuid.uuid4()), "lease_id": lease_id,
               "renewable": renewable, "lease_duration": int(lease_duration),
               "data": data, "wrap_info": None,
               "warnings": warnings if warnings else None, "auth": auth}
        if self.s.opts.get("mount_type") and mount_type is not None:
            env["mount_type"] = mount_type
        return env

    def denied(self, invalid_token):
        s = self.s.opts
        if invalid_token and not s.get("legacy_invalid_token"):
            return VaultError(403, [multierror(["permission denied", "invalid token"])])
        if s.get("error_style") == "bare":
            return VaultError(403, ["permission denied"])
        return VaultError(403, [multierror(["permission denied"])])

    def unknown_params(self, body, known):
        extra = sorted(k for k in body if k not in known)
        if extra:
            return ["Endpoint ignored these unrecognized parameters: [%s]" % " ".join(extra)]
        return []

    def policy_allows(self, tok, path, op):
        pols = self.s.policies
        if pols is None or "root" in tok.policies:
            return True
        if path in ("auth/token/lookup-self", "auth/token/renew-self",
                    "auth/token/revoke-self") and "default" in tok.policies:
            return True
        for pn in tok.policies:
            spec = pols.get(pn)
            if not spec:
                continue
            items = spec.items() if isinstance(spec, dict) else [(p, None) for p in spec]
            for pat, caps in items:
                if _path_match(pat, path):
                    if caps is None:
                        return True
                    if "deny" in caps:
                        return False
                    want = {"read": ["read"], "update": ["update", "create"],
                            "delete": ["delete"], "list": ["list"]}[op]
                    if any(c in caps for c in want + ["sudo"]):
                        return True
        return False

    def token_block(self, tok, lease_duration):
        pol = list(tok.policies)
        auth = {"client_token": tok.id, "accessor": tok.accessor, "policies": pol,
                "token_policies": pol, "metadata": tok.meta,
                "lease_duration": int(lease_duration), "renewable": tok.renewable,
                "entity_id": tok.entity_id, "token_type": tok.type, "orphan": tok.orphan,
                "mfa_requirement": None, "num_uses": tok.num_uses}
        if not pol:
            del auth["token_policies"]
        return auth

    # --- dispatch
    def handle(self, method, path, query, headers, body, remote):
        """Returns (status, json_obj|None, extra_headers, raw_bytes|None, content_type)."""
        s = self.s
        op = {"GET": "read", "HEAD": "read", "PUT": "update", "POST": "update",
              "DELETE": "delete", "LIST": "list"}.get(method)
        if op == "read" and query.get("list", [""])[0] in ("true", "1"):
            op = "list"
        if op is None:
            raise VaultError(405, ["unsupported operation"])
        if path == "sys/health":
            return self.sys_health(method, query)
        if s.sealed:
            raise VaultError(503, ["Vault is sealed"])
        if s.opts.get("require_request_header") and headers.get("X-Vault-Request", "") != "true":
            raise VaultError(412, ['missing "X-Vault-Request" header'])
        if any(seg.endswith(".") for seg in path.split("/") if seg):
            raise VaultError(404, ["unsupported path"])
        params = {k: v[-1] for k, v in query.items()}
        data = dict(params)
        if isinstance(body, dict):
            data.update(body)

        # unauthenticated endpoints
        if path == "auth/approle/login":
            if op != "update":
                raise VaultError(405, ["unsupported operation"])
            return self.approle_login(data, remote, headers)
        pm, rest = self._mount(path, self.s.pki)
        if pm is not None and (rest in ("ca_chain", "cert/ca_chain", "cert/ca", "ca/pem", "ca")
                               or re.fullmatch(r"issuer/[^/]+/json", rest or "")):
            if op != "read":
                raise VaultError(405, ["unsupported operation"])
            return self.pki_fetch(pm, rest)

        # everything else needs a token
        tok = self.authenticate(headers)
        if not self.policy_allows(tok, path, op):
            raise self.denied(False)
        try:
            return self.route(tok, op, path, data, body if isinstance(body, dict) else {},
                              headers, query)
        finally:
            self.consume_use(tok)

    def authenticate(self, headers):
        tid = headers.get("X-Vault-Token")
        if not tid:
            a = headers.get("Authorization", "")
            if a.lower().startswith("bearer "):
                tid = a[7:].strip()
        if not tid:
            raise self.denied(False)
        s = self.s
        with s.lock:
            tok = s.tokens.get(tid)
            if tok is None or not tok.valid(s.now()):
                raise self.denied(True)
            return tok

    def consume_use(self, tok):
        with self.s.lock:
            if tok.num_uses > 0:
                tok.num_uses -= 1
                if tok.num_uses == 0:
                    tok.use_exhausted = True

    def _mount(self, path, mounts):
        best = None
        for m in mounts:
            if path == m or path.startswith(m + "/"):
                if best is None or len(m) > len(best):
                    best = m
        if best is None:
            return None, None
        return best, path[len(best) + 1:]

    def route(self, tok, op, path, data, body, headers, query):
        if path == "auth/token/lookup-self":
            if op not in ("read", "update"):
                raise VaultError(405, ["unsupported operation"])
            return self.lookup_self(tok)
        if path == "auth/token/renew-self":
            if op != "update":
                raise VaultError(405, ["unsupported operation"])
            return self.renew_self(tok, data)
        if path == "auth/token/revoke-self":
            if op != "update":
                raise VaultError(405, ["unsupported operation"])
            with self.s.lock:
                tok.revoked = True
            return 204, None, {}, None, None
        m = re.fullmatch(r"sys/leases/(renew|lookup|revoke)(?:/(.+))?", path)
        if m:
            if op != "update":
                raise VaultError(405, ["unsupported operation"])
            return self.sys_leases(m.group(1), m.group(2), data)
        pm, rest = self._mount(path, self.s.pki)
        if pm is not None:
            return self.pki_route(pm, rest, op, data, body)
        km, rest = self._mount(path, self.s.kv)
        if km is not None:
            return self.kv_route(km, rest, op, data, body, query)
        raise VaultError(404, ["unsupported path"])

    # --- sys/health
    def sys_health(self, method, query):
        s = self.s
        q = {k: v[-1] for k, v in query.items()}
        mode = s.opts.get("health_mode", "active")
        now = s.now()
        body = {"initialized": mode != "uninit", "sealed": s.sealed,
                "standby": mode in ("standby", "perfstandby"),
                "performance_standby": mode == "perfstandby",
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "secondary" if mode == "drsecondary" else "disabled",
                "server_time_utc": int(now), "version": VAULT_VERSION,
                "enterprise": False, "cluster_name": "vault-cluster-vaultd",
                "cluster_id": "4f0c2a58-vaultd-0000-0000-000000000000",
                "echo_duration_ms": 0, "clock_skew_ms": 0}

        def code(name, default):
            try:
                return int(q.get(name, default))
            except ValueError:
                return default
        if mode == "uninit":
            st = code("uninitcode", 501)
        elif s.sealed:
            st = code("sealedcode", 503)
        elif mode == "drsecondary":
            st = code("drsecondarycode", 472)
        elif mode == "perfstandby":
            st = code("activecode", 200) if q.get("perfstandbyok") == "true" \
                else code("performancestandbycode", 473)
        elif mode == "standby":
            st = code("activecode", 200) if q.get("standbyok") == "true" \
                else code("standbycode", 429)
        else:
            st = code("activecode", 200)
        if method == "HEAD":
            return st, None, {}, b"", None
        return st, body, {}, None, None

    # --- AppRole
    def approle_login(self, data, remote, headers):
        s = self.s
        role_id = data.get("role_id")
        if not role_id:
            raise bad("missing role_id")
        with s.lock:
            name, role = None, None
            for n, r in s.approles.items():
                if r["role_id"] == role_id:
                    name, role = n, r
                    break
            if role is None:
                raise bad("invalid role or secret ID")
            if parse_bool(role.get("bind_secret_id", True), "bind_secret_id"):
                sid = data.get("secret_id")
                if not sid:
                    raise bad("missing secret_id")
                ent = role["secret_ids"].get(sid)
                if ent is None:
                    raise bad("invalid role or secret ID")
                now = s.now()
                if ent["expire"] is not None and now >= ent["expire"]:
                    del role["secret_ids"][sid]
                    raise bad("invalid role or secret ID")
                if ent["cidr_list"]:
                    ip = ipaddress.ip_address(remote)
                    if not any(ip in ipaddress.ip_network(c, strict=False)
                               for c in ent["cidr_list"]):
                        raise bad("source address %s unauthorized through CIDR restrictions "
                                  "on the secret ID" % json.dumps(remote))
                ent["uses"] += 1
                if ent["num_uses"] and ent["uses"] >= ent["num_uses"]:
                    del role["secret_ids"][sid]
            ttype = role.get("token_type", "service")
            if ttype in ("default", "default-service"):
                ttype = "service"
            if ttype == "default-batch":
                ttype = "batch"
            pol = list(role.get("token_policies") or role.get("policies") or [])
            tok = s.create_token({
                "policies": pol, "meta": {"role_name": name},
                "ttl": role.get("token_ttl", 0) or SYS_DEFAULT_TTL,
                "max_ttl": role.get("token_max_ttl", 0),
                "explicit_max_ttl": role.get("token_explicit_max_ttl", 0),
                "period": role.get("period", 0) or role.get("token_period", 0),
                "renewable": role.get("renewable", True), "type": ttype,
                "num_uses": role.get("token_num_uses", 0), "path": "auth/approle/login",
                "display_name": "approle", "entity_id": s.entity_ids.get(name, ""),
                "namespace": headers.get("_namespace", "")})
            tok.base_ttl = parse_duration(role.get("token_ttl", 0))
        warnings = self.unknown_params(data, {"role_id", "secret_id"})
        auth = self.token_block(tok, tok.ttl)
        return 200, self.envelope(auth=auth, warnings=warnings, mount_type="approle"), \
            {}, None, None

    # --- token self
    def lookup_self(self, tok):
        s = self.s
        now = s.now()
        with s.lock:
            d = {"accessor": tok.accessor, "creation_time": int(tok.creation_time),
                 "creation_ttl": int(tok.ttl), "display_name": tok.display_name,
                 "entity_id": tok.entity_id,
                 "expire_time": rfc3339(tok.expire) if tok.expire else None,
                 "explicit_max_ttl": int(tok.explicit_max_ttl), "id": tok.id,
                 "issue_time": rfc3339(tok.creation_time), "meta": tok.meta,
                 "num_uses": tok.num_uses, "orphan": tok.orphan, "path": tok.path,
                 "policies": list(tok.policies), "renewable": tok.renewable,
                 "ttl": max(0, int(tok.expire - now)) if tok.expire else 0,
                 "type": tok.type}
            if tok.last_renewal:
                d["last_renewal_time"] = int(tok.last_renewal)
                d["last_renewal"] = rfc3339(tok.last_renewal)
            if tok.period:
                d["period"] = int(tok.period)
            if tok.namespace:
                d["namespace_path"] = tok.namespace.strip("/") + "/"
        return 200, self.envelope(data=d, mount_type="token"), {}, None, None

    def calculate_ttl(self, increment, backend_ttl, period, backend_max, explicit_max, start):
        """sdk/framework/lease.go CalculateTTL. Returns (ttl, warnings)."""
        now = int(self.s.now())
        warnings = []
        if period > 0:
            ttl = min(period, SYS_MAX_TTL)
            if explicit_max > 0:
                left = int(start + explicit_max) - now
                if left < ttl:
                    warnings.append("period of %s exceeded the effective max_ttl of %s; "
                                    "period value is capped accordingly"
                                    % (json.dumps(human_duration(ttl)),
                                       json.dumps(human_duration(max(left, 0)))))
                    ttl = left
            return max(ttl, 0), warnings
        if increment > 0:
            ttl = increment
        elif backend_ttl > 0:
            ttl = backend_ttl
        else:
            ttl = SYS_DEFAULT_TTL
        max_ttl = SYS_MAX_TTL
        if 0 < backend_max < max_ttl:
            max_ttl = backend_max
        if 0 < explicit_max < max_ttl:
            max_ttl = explicit_max
        max_valid = int(start) + max_ttl
        if now > max_valid:
            raise bad("past the max TTL, cannot renew")
        left = max_valid - now
        if left < ttl:
            warnings.append("TTL of %s exceeded the effective max_ttl of %s; TTL value is "
                            "capped accordingly" % (json.dumps(human_duration(ttl)),
                                                    json.dumps(human_duration(left))))
            ttl = left
        return ttl, warnings

    def renew_self(self, tok, data):
        s = self.s
        inc = parse_duration(data.get("increment", 0), "increment")
        warnings = self.unknown_params(data, {"increment", "token"})
        with s.lock:
            if tok.type == "batch":
                raise bad("batch tokens cannot be renewed")
            if not tok.renewable:
                raise bad("lease is not renewable")
            if tok.expire is None:
                return 200, self.envelope(auth=self.token_block(tok, 0), warnings=warnings,
                                          mount_type="token"), {}, None, None
            ttl, w = self.calculate_ttl(inc, tok.base_ttl, tok.period, tok.max_ttl,
                                        tok.explicit_max_ttl, tok.creation_time)
            now = s.now()
            tok.expire = now + ttl
            tok.last_renewal = now
            auth = self.token_block(tok, ttl)
        return 200, self.envelope(auth=auth, warnings=warnings + w, mount_type="token"), \
            {}, None, None

    # --- sys/leases
    def sys_leases(self, action, path_id, data):
        s = self.s
        lease_id = data.get("lease_id") or path_id or ""
        if not lease_id:
            raise bad("lease_id must be specified")
        now = s.now()
        with s.lock:
            lease = s.leases.get(lease_id)
            if action == "lookup":
                if lease is None or lease.revoked:
                    raise bad("invalid lease")
                d = {"id": lease.id, "issue_time": rfc3339(lease.issue),
                     "expire_time": rfc3339(lease.expire),
                     "last_renewal": rfc3339(lease.last_renewal) if lease.last_renewal else None,
                     "renewable": lease.renewable, "ttl": max(0, int(lease.expire - now)),
                     "path": lease.path}
                return 200, self.envelope(data=d, mount_type="system"), {}, None, None
            if action == "revoke":
                if lease is not None:
                    lease.revoked = True
                    if lease.serial and lease.serial not in s.revoked:
                        s.revoked[lease.serial] = now
                    del s.leases[lease_id]
                return 204, None, {}, None, None
            # renew
            if lease_id.startswith("auth/"):
                raise bad("tokens cannot be renewed through this endpoint")
            if lease is None or lease.revoked:
                raise bad("lease not found")
            if now >= lease.expire:
                raise bad("lease expired")
            if not lease.renewable:
                raise bad("lease is not renewable")
            inc = parse_duration(data.get("increment", 0), "increment")
            ttl, w = self.calculate_ttl(inc, lease.base_ttl, 0, lease.max_ttl, 0, lease.issue)
            lease.expire = now + ttl
            lease.last_renewal = now
        return 200, self.envelope(data=None, lease_id=lease_id, renewable=True,
                                  lease_duration=ttl, warnings=w, mount_type="system"), \
            {}, None, None

    # --- PKI
    def pki_fetch(self, mount, rest):
        ca = self.ca
        chain = "\n".join(ca["chain"])
        issuing = ca["chain"][0]
        if rest == "ca_chain":
            if not chain:
                return 204, None, {}, None, None
            return 200, None, {}, chain.encode(), "application/pkix-cert"
        if rest == "ca/pem":
            return 200, None, {}, issuing.encode(), "application/pem-certificate-chain"
        if rest == "ca":
            return 200, None, {}, pem_body_der(issuing), "application/pkix-cert"
        if rest == "cert/ca_chain":
            d = {"certificate": chain, "ca_chain": chain, "revocation_time": 0,
                 "revocation_time_rfc3339": ""}
            return 200, self.envelope(data=d, mount_type="pki"), {}, None, None
        if rest == "cert/ca":
            d = {"certificate": issuing, "revocation_time": 0, "revocation_time_rfc3339": ""}
            return 200, self.envelope(data=d, mount_type="pki"), {}, None, None
        ref = rest.split("/")[1]
        if ref not in ("default", ca["issuer_id"], ca["issuer_name"]):
            raise bad("unable to find PKI issuer for reference: %s" % ref)
        d = {"certificate": issuing, "ca_chain": list(ca["chain"]),
             "issuer_id": ca["issuer_id"], "issuer_name": ca["issuer_name"],
             "key_id": ca["key_id"], "revocation_time": 0, "revocation_time_rfc3339": "",
             "leaf_not_after_behavior": "err", "usage": "read-only,issuing-certificates,crl-signing,ocsp-signing"}
        return 200, self.envelope(data=d, mount_type="pki"), {}, None, None

    def pki_route(self, mount, rest, op, data, body):
        rest = rest or ""
        m = re.fullmatch(r"(?:issuer/([^/]+)/)?(issue|sign)/([^/]+)", rest)
        if m:
            if op != "update":
                raise VaultError(405, ["unsupported operation"])
            ref = m.group(1)
            if ref and ref not in ("default", self.ca["issuer_id"], self.ca["issuer_name"]):
                raise bad("unable to find PKI issuer for reference: %s" % ref)
            return self.pki_issue(mount, m.group(3), data, sign=(m.group(2) == "sign"))
        if rest == "revoke":
            if op != "update":
                raise VaultError(405, ["unsupported operation"])
            return self.pki_revoke(data)
        raise VaultError(404, ["unsupported path"])

    def _name_allowed(self, role, name):
        if role["allow_any_name"]:
            return True
        host = name.split("@", 1)[1] if "@" in name else name
        if role["allow_localhost"] and host in ("localhost", "localdomain"):
            return True
        if host.startswith("*.") and not role.get("allow_wildcard_certificates", True):
            return False
        for d in role["allowed_domains"]:
            if role["allow_bare_domains"] and host == d:
                return True
            if role["allow_subdomains"]:
                h = host[2:] if host.startswith("*.") else host
                if h.endswith("." + d) or (host.startswith("*.") and h == d):
                    return True
            if role["allow_glob_domains"] and "*" in d and fnmatch.fnmatchcase(host, d):
                return True
        return False

    def pki_issue(self, mount, role_name, data, sign=False, fault=None):
        s = self.s
        with s.lock:
            role = dict(s.pki[mount]["roles"].get(role_name) or {})
        if not role:
            raise bad("unknown role: %s" % role_name)
        known = {"common_name", "alt_names", "ip_sans", "uri_sans", "other_sans", "ttl",
                 "not_after", "format", "private_key_format", "exclude_cn_from_sans",
                 "remove_roots_from_chain", "key_type", "key_bits", "serial_number",
                 "user_ids", "issuer_ref", "role"}
        if sign:
            known.add("csr")
        warnings = self.unknown_params(data, known)
        fmt = data.get("format") or "pem"
        if fmt not in ("pem", "der", "pem_bundle"):
            raise bad('the "format" path parameter must be "pem", "der", or "pem_bundle"')
        pkf = data.get("private_key_format") or "der"
        if pkf not in ("der", "pkcs8", "pem"):
            raise bad('the "private_key_format" path parameter must be "", "der", or "pkcs8"')
        key_type = role["key_type"]
        key_bits = int(role.get("key_bits") or 0)
        csr_info = None
        if sign:
            csr = data.get("csr") or ""
            if not csr.strip():
                raise bad('"csr" is empty')
            csr_info = parse_csr(csr)
            if key_type not in ("any", csr_info["key_type"]):
                raise bad("role requires keys of type %s" % key_type)
            key_type = csr_info["key_type"]
        elif key_type == "any":
            if not data.get("key_type") and not data.get("key_bits"):
                raise bad('role key type "any" not allowed for issuing certificates without '
                          'providing key_type and/or key_bits request parameters')
            key_type = data.get("key_type") or "rsa"
            key_bits = int(data.get("key_bits") or 0)
        elif data.get("key_type") or data.get("key_bits"):
            warnings.append("key_type and key_bits are ignored: the role does not have "
                            "key_type=any")
        # names
        if csr_info is not None and parse_bool(role["use_csr_common_name"], "use_csr_common_name"):
            cn = csr_info["cn"]
        else:
            cn = str(data.get("common_name") or "")
        if not cn and parse_bool(role["require_cn"], "require_cn"):
            raise bad('the common_name field is required, or must be provided in a CSR with '
                      '"use_csr_common_name" set to true, unless "require_cn" is set to false')
        if cn and not self._name_allowed(role, cn):
            raise bad("common name %s not allowed by this role" % cn)
        if csr_info is not None and parse_bool(role["use_csr_sans"], "use_csr_sans"):
            alts = csr_info["dns"] + csr_info["emails"]
            ips = csr_info["ips"]
            uris = csr_info["uris"]
        else:
            alts = parse_slice(data.get("alt_names"))
            ips = parse_slice(data.get("ip_sans"))
            uris = parse_slice(data.get("uri_sans"))
        others = parse_slice(data.get("other_sans"))
        for a in alts:
            if not self._name_allowed(role, a):
                raise bad("subject alternate name %s not allowed by this role" % a)
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise bad("the value %r is not a valid IP address" % ip)
            if not parse_bool(role["allow_ip_sans"], "allow_ip_sans"):
                raise bad("IP Subject Alternative Names are not allowed in this role, but was "
                          "provided %s" % ip)
        for u in uris:
            if not role["allowed_uri_sans"]:
                raise bad("URI Subject Alternative Names are not allowed in this role, but "
                          "were provided via the API")
            if not any(fnmatch.fnmatchcase(u, p) for p in role["allowed_uri_sans"]):
                raise bad("URI Subject Alternative Names are not allowed in this role, but "
                          "were provided %s" % u)
        other_ext = []
        for o in others:
            oid, _, val = o.partition(";")
            if not role["allowed_other_sans"] or not any(
                    fnmatch.fnmatchcase(o, p) or p == "*" for p in role["allowed_other_sans"]):
                raise bad("other SAN %s not allowed by this role" % o)
            typ, _, v = val.partition(":")
            if typ.upper() not in ("UTF8", "UTF-8") or not v:
                raise bad("other SAN %s: only UTF8 values are supported" % o)
            other_ext.append("otherName:%s;UTF8:%s" % (oid, v))
        # TTL
        now = int(s.now())
        ttl = parse_duration(data.get("ttl"), "ttl")
        max_ttl = role["max_ttl"] or SYS_MAX_TTL
        if data.get("not_after"):
            try:
                na = int(datetime.datetime.strptime(data["not_after"], "%Y-%m-%dT%H:%M:%SZ")
                         .replace(tzinfo=datetime.timezone.utc).timestamp())
            except ValueError:
                raise bad("could not parse not_after: %s" % data["not_after"])
            ttl = na - now
        else:
            if ttl == 0:
                ttl = role["ttl"] or SYS_DEFAULT_TTL
            if ttl > max_ttl:
                warnings.append("TTL %s is longer than permitted maxTTL %s, so maxTTL is being "
                                "used" % (json.dumps(go_duration(ttl)), json.dumps(go_duration(max_ttl))))
                ttl = max_ttl
        not_after = now + ttl
        ca_na = self.ca["issuing_not_after"]
        if not_after > ca_na:
            beh = role.get("leaf_not_after_behavior", "err")
            if beh == "truncate":
                not_after = ca_na
            elif beh != "permit":
                raise bad("cannot satisfy request, as TTL would result in notAfter of %s that "
                          "is beyond the expiration of the CA certificate at %s"
                          % (go_time(not_after), go_time(ca_na)))
        not_before = now - role["not_before_duration"]
        if fault == "expired":
            not_before, not_after = now - 2 * ttl - 60, now - 60
        # SAN list
        dns_sans, email_sans = [], []
        if cn and not parse_bool(data.get("exclude_cn_from_sans", False), "exclude_cn_from_sans"):
            (email_sans if "@" in cn else dns_sans).append(cn)
        for a in alts:
            lst = email_sans if "@" in a else dns_sans
            if a not in lst:
                lst.append(a)
        san = (["DNS:" + x for x in dns_sans] + ["email:" + x for x in email_sans]
               + ["IP:" + x for x in ips] + ["URI:" + x for x in uris] + other_ext)
        eku = []
        if parse_bool(role["server_flag"], "server_flag"):
            eku.append("serverAuth")
        if parse_bool(role["client_flag"], "client_flag"):
            eku.append("clientAuth")
        ext = ["basicConstraints=critical,CA:FALSE",
               "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement",
               "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        if eku:
            ext.append("extendedKeyUsage=" + ",".join(eku))
        if san:
            ext.append("subjectAltName=" + ",".join(san))
        # key + cert
        if sign:
            key_pem = None
            csr_pem = data["csr"]
        else:
            pk8, csr_pem = new_key_and_csr(key_type, key_bits)
            key_pem = pk8 if pkf == "pkcs8" else key_traditional(pk8, key_type)
        serial = fmt_serial(secrets.randbits(159) | (1 << 152))
        signer = (self.ca["issuing_cert"], self.ca["issuing_key"])
        if fault == "wrong_ca":
            signer = self.ca["rogue"]()
        cert = sign_leaf(signer[0], signer[1], csr_pem, cn, ext, serial, not_before, not_after)
        if fault == "mismatch" and key_pem:
            pk8b, _ = new_key_and_csr(key_type, key_bits)
            key_pem = pk8b if pkf == "pkcs8" else key_traditional(pk8b, key_type)
        chain = list(self.ca["chain"])
        if parse_bool(data.get("remove_roots_from_chain", False), "remove_roots_from_chain"):
            chain = [c for c, ss in zip(chain, self.ca["self_signed"]) if not ss]
        issuing = self.ca["chain"][0]
        if fmt == "der":
            enc = lambda p: base64.b64encode(pem_body_der(p)).decode()
            out = {"certificate": enc(cert), "issuing_ca": enc(issuing),
                   "ca_chain": [enc(c) for c in chain]}
            if key_pem:
                out["private_key"] = enc(key_pem)
        else:
            out = {"certificate": cert, "issuing_ca": issuing, "ca_chain": chain}
            if key_pem:
                out["private_key"] = key_pem
            if fmt == "pem_bundle":
                parts = ([key_pem] if key_pem else []) + [cert] + chain
                out["certificate"] = "\n".join(parts)
        if not out["ca_chain"]:
            del out["ca_chain"]
        if key_pem:
            out["private_key_type"] = key_type
        out["serial_number"] = serial
        out["expiration"] = int(not_after)
        lease_id, lease_dur = "", 0
        with s.lock:
            if parse_bool(role.get("generate_lease", False), "generate_lease"):
                lease_id = "%s/%s/%s/%s" % (mount, "sign" if sign else "issue", role_name,
                                            rand_token(24))
                lease_dur = not_after - now
                s.leases[lease_id] = Lease(lease_id, "%s/%s/%s" % (mount, "sign" if sign else "issue", role_name),
                                           now, lease_dur, False, kind="pki", serial=serial)
            s.issued[serial] = {"serial_number": serial, "common_name": cn, "mount": mount,
                                "role": role_name, "not_before": int(not_before),
                                "not_after": int(not_after), "issued_at": now,
                                "dns_sans": dns_sans, "ip_sans": ips, "uri_sans": uris,
                                "certificate": cert, "lease_id": lease_id, "signed": sign,
                                "fault": fault}
        return 200, self.envelope(data=out, warnings=warnings, lease_id=lease_id,
                                  lease_duration=lease_dur, mount_type="pki"), {}, None, None

    def pki_revoke(self, data):
        s = self.s
        serial = data.get("serial_number") or ""
        cert = data.get("certificate") or ""
        if serial and cert:
            raise bad("Must provide either the certificate or the serial to revoke; not both.")
        if not serial and not cert:
            raise bad("The serial number or certificate to revoke must be provided.")
        if cert:
            try:
                serial = CertInfo(cert).serial
            except Exception:
                raise bad("certificate could not be parsed")
        serial = norm_serial(serial)
        if serial in self.ca["serials"]:
            raise bad("adding issuer (id: %s) to its own CRL is not allowed" % self.ca["issuer_id"])
        now = s.now()
        with s.lock:
            ent = s.issued.get(serial)
            if ent is None:
                raise bad("certificate with serial %s not found." % serial)
            if serial not in s.revoked:
                if ent["not_after"] <= now:
                    return 200, self.envelope(data=None, warnings=[
                        "certificate with serial %s already expired; refusing to add to CRL"
                        % serial], mount_type="pki"), {}, None, None
                s.revoked[serial] = now
            rt = s.revoked[serial]
        d = {"revocation_time": int(rt), "revocation_time_rfc3339": rfc3339(rt),
             "state": "revoked"}
        return 200, self.envelope(data=d, mount_type="pki"), {}, None, None

    # --- KV
    def kv_route(self, mount, rest, op, data, body, query):
        s = self.s
        rest = (rest or "").strip("/")
        with s.lock:
            m = s.kv[mount]
            if m["version"] == 1:
                return self.kv1(m, rest, op, body)
            if not rest.startswith("data/"):
                if op == "read":
                    return 404, self.envelope(data=None, warnings=[KV2_BAD_PATH_WARNING],
                                              mount_type="kv"), {}, None, None
                raise VaultError(404, ["unsupported path"])
            path = rest[5:]
            ent = m["data"].get(path)
            if op == "read":
                try:
                    ver = int(query.get("version", ["0"])[-1] or 0)
                except ValueError:
                    raise bad("error converting input for field \"version\"")
                if ent is None or not ent["versions"]:
                    raise VaultError(404, [])
                if ver == 0:
                    ver = len(ent["versions"])
                if ver < 1 or ver > len(ent["versions"]):
                    raise VaultError(404, [])
                v = ent["versions"][ver - 1]
                meta = s.kv_meta(ent, ver)
                gone = v["destroyed"] or (v["deletion_time"] is not None
                                          and v["deletion_time"] <= s.now())
                env = self.envelope(data={"data": None if gone else v["data"],
                                          "metadata": meta}, mount_type="kv")
                return (404 if gone else 200), env, {}, None, None
            if op == "update":
                if not isinstance(body.get("data"), dict):
                    raise bad("no data provided")
                opts = body.get("options") or {}
                meta = s.kv_put(mount, path, body["data"], cas=opts.get("cas"))
                return 200, self.envelope(data=meta, mount_type="kv"), {}, None, None
            if op == "delete":
                if ent and ent["versions"]:
                    v = ent["versions"][-1]
                    if v["deletion_time"] is None:
                        v["deletion_time"] = s.now()
                return 204, None, {}, None, None
        raise VaultError(405, ["unsupported operation"])

    def kv1(self, m, path, op, body):
        if op == "read":
            d = m["data"].get(path)
            if d is None:
                raise VaultError(404, [])
            ld = SYS_DEFAULT_TTL
            for k in ("ttl", "lease"):
                if k in d:
                    try:
                        ld = parse_duration(d[k], k)
                    except VaultError:
                        pass
                    break
            return 200, self.envelope(data=dict(d), lease_duration=ld, mount_type="kv"), \
                {}, None, None
        if op == "update":
            m["data"][path] = dict(body)
            return 204, None, {}, None, None
        if op == "delete":
            m["data"].pop(path, None)
            return 204, None, {}, None, None
        raise VaultError(405, ["unsupported operation"])


def _path_match(pat, path):
    pat = pat.strip("/")
    if pat.endswith("*"):
        pre = pat[:-1]
        return _seg_match(pre, path[:len(pre)]) and len(path) >= len(pre)
    return _seg_match(pat, path)


def _seg_match(pat, path):
    if "+" not in pat:
        return pat == path
    ps, xs = pat.split("/"), path.split("/")
    if len(ps) != len(xs):
        return False
    return all(p == "+" or p == x for p, x in zip(ps, xs))


# --------------------------------------------------------------------------
# HTTP front end

INTEREST_HEADERS = ("X-Vault-Token", "Authorization", "X-Vault-Namespace", "X-Vault-Request",
                    "X-Vault-Wrap-TTL", "Content-Type", "User-Agent", "Accept", "Connection",
                    "Content-Length", "Transfer-Encoding", "Expect")

DEFAULT_FAIL_ERRORS = {
    503: ["Vault is sealed"], 429: None, 500: ["internal error"],
    502: ["upstream rate limited"], 412: [], 403: None, 400: ["invalid request"],
    404: [], 405: ["unsupported operation"], 413: ["http: request body too large"],
}


class VaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vaultd"
    sys_version = ""
    timeout = 30

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.conn_id = self.server.next_conn_id()

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("vaultd: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self): self.dispatch()
    def do_HEAD(self): self.dispatch()
    def do_PUT(self): self.dispatch()
    def do_POST(self): self.dispatch()
    def do_DELETE(self): self.dispatch()
    def do_LIST(self): self.dispatch()
    def do_PATCH(self): self.dispatch()
    def do_OPTIONS(self): self.dispatch()

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += n
                if total > self.server.app.max_body:
                    return None
                chunks.append(self.rfile.read(n))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > self.server.app.max_body:
            return None
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, obj=None, headers=None, raw=None, ctype=None):
        if obj is not None:
            payload = json.dumps(obj).encode()
            ctype = ctype or "application/json"
        elif raw is not None:
            payload = raw
        else:
            payload = b""
        self.send_response(status)
        if status != 204 and (payload or obj is not None or raw is not None):
            self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if status != 204:
            self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and status != 204 and payload:
            self.wfile.write(payload)
        self.wfile.flush()
        return status

    def dispatch(self):
        app = self.server.app
        st = app.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        raw_path = urllib.parse.unquote(url.path)
        hdrs = {h: self.headers.get(h) for h in INTEREST_HEADERS if self.headers.get(h) is not None}
        entry = {"time": st.now(), "real_time": time.time(), "method": self.command,
                 "path": raw_path, "query": url.query, "headers": hdrs,
                 "conn": self.conn_id, "remote": self.client_address[0], "status": None,
                 "body": None, "namespace": "", "route": None}
        with st.lock:
            st.req_seq += 1
            entry["seq"] = st.req_seq
            st.requests.append(entry)
            if len(st.requests) > app.max_log:
                del st.requests[:len(st.requests) - app.max_log]
        ns_hdr = (self.headers.get("X-Vault-Namespace") or "").strip("/")
        extra = {}
        if ns_hdr and st.opts.get("echo_namespace") and st.namespaces:
            extra["X-Vault-Namespace"] = self.headers.get("X-Vault-Namespace")
        try:
            body_bytes = self.read_body()
            if body_bytes is None:
                self.close_connection = True
                raise VaultError(413, ["http: request body too large"])
            body = None
            if body_bytes and body_bytes.strip():
                try:
                    body = json.loads(body_bytes)
                except ValueError as e:
                    raise bad("failed to parse JSON input: %s" % e)
                entry["body"] = body
            if not raw_path.startswith("/v1/"):
                raise VaultError(404, [])
            path = raw_path[4:].strip("/")
            # namespaces
            full = (ns_hdr + "/" + path) if ns_hdr else path
            ns = ""
            if st.namespaces:
                best = ""
                for n in st.namespaces:
                    if (full.startswith(n + "/") or full == n) and len(n) > len(best):
                        best = n
                if ns_hdr and not (best == ns_hdr or best.startswith(ns_hdr + "/")):
                    raise VaultError(404, ['no handler for route "%s". route entry not found.'
                                           % full])
                ns = best
                path = full[len(best) + 1:] if best else full
            elif ns_hdr:
                raise VaultError(403, ["namespaces feature not enabled"])
            entry["namespace"] = ns
            entry["route"] = path
            with st.lock:
                key = "%s %s" % (self.command, path)
                st.counters[key] = st.counters.get(key, 0) + 1
            rule = app.take_rule(self.command, path)
            fault = None
            if rule is not None:
                if rule.get("delay"):
                    time.sleep(float(rule["delay"]))
                mode = rule.get("mode", "status")
                if mode == "reset":
                    entry["status"] = "reset"
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if mode == "hang":
                    time.sleep(float(rule.get("hang", 5)))
                    entry["status"] = "hang"
                    self.close_connection = True
                    return
                if mode == "garbage":
                    entry["status"] = self.send(int(rule.get("status", 200)), None, extra,
                                                rule.get("body", "{\"data\": {\"certi").encode(),
                                                rule.get("content_type", "application/json"))
                    return
                if mode == "truncated":
                    payload = b'{"request_id":"x","data":{"certificate":"-----BEGIN'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload) + 500))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    entry["status"] = "truncated"
                    return
                if mode == "status":
                    status = int(rule.get("status", 503))
                    errors = rule.get("errors")
                    h = dict(extra)
                    h.update(rule.get("headers") or {})
                    if errors is None:
                        errors = DEFAULT_FAIL_ERRORS.get(status, ["error %d" % status])
                        if status == 429:
                            errors = ['request path "%s": rate limit quota exceeded' % path]
                            h.setdefault("Retry-After", str(rule.get("retry_after", 1)))
                            h.setdefault("X-RateLimit-Limit", "10")
                            h.setdefault("X-RateLimit-Remaining", "0")
                            h.setdefault("X-RateLimit-Reset", str(rule.get("retry_after", 1)))
                        elif status == 403:
                            errors = app.vault.denied(bool(rule.get("invalid_token", True))).errors
                    if "body" in rule:
                        entry["status"] = self.send(status, None, h, rule["body"].encode(),
                                                    rule.get("content_type", "application/json"))
                    elif status < 400 or errors is False:
                        entry["status"] = self.send(status, None, h)
                    else:
                        entry["status"] = self.send(status, {"errors": errors}, h)
                    return
                if mode in ("mismatch", "expired", "wrong_ca"):
                    fault = mode
            if fault:
                pm, rest = app.vault._mount(path, st.pki)
                mm = re.fullmatch(r"(?:issuer/[^/]+/)?(issue|sign)/([^/]+)", rest or "")
                if pm and mm and self.command in ("PUT", "POST"):
                    app.vault.authenticate({**hdrs})
                    data = dict(body or {})
                    r = app.vault.pki_issue(pm, mm.group(2), data, sign=mm.group(1) == "sign",
                                            fault=fault)
                    entry["status"] = self.send(r[0], r[1], extra)
                    return
            status, obj, h, raw, ctype = app.vault.handle(
                self.command, path, query, {**hdrs, "_namespace": ns}, body,
                self.client_address[0])
            extra.update(h)
            entry["status"] = self.send(status, obj, extra, raw, ctype)
        except VaultError as e:
            extra.update(e.headers)
            entry["status"] = self.send(e.status, {"errors": e.errors}, extra)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # internal error -> 500
            traceback.print_exc()
            try:
                entry["status"] = self.send(500, {"errors": ["1 error occurred:\n\t* internal "
                                                              "error: %s\n\n" % e]}, extra)
            except Exception:
                self.close_connection = True


class BoundedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, app, ssl_ctx=None, max_threads=128):
        self.app = app
        self.ssl_ctx = ssl_ctx
        self.sem = threading.BoundedSemaphore(max_threads)
        self.conns = set()
        self.conns_lock = threading.Lock()
        self._conn_seq = 0
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def next_conn_id(self):
        with self.conns_lock:
            self._conn_seq += 1
            return self._conn_seq

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_ctx is not None:
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True,
                                             do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request, client_address):
        self.sem.acquire()
        with self.conns_lock:
            self.conns.add(request)
        try:
            super().process_request(request, client_address)
        except Exception:
            self.sem.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            if self.ssl_ctx is not None:
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            self.finish_request(request, client_address)
        except Exception:
            pass
        finally:
            with self.conns_lock:
                self.conns.discard(request)
            self.shutdown_request(request)
            self.sem.release()

    def handle_error(self, request, client_address):
        pass

    def kill_connections(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vaultd-control"
    timeout = 60

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("vaultd control: %s\n" % (fmt % args))

    def do_GET(self): self.dispatch()
    def do_POST(self): self.dispatch()
    def do_PUT(self): self.dispatch()
    def do_DELETE(self): self.dispatch()

    def reply(self, status, obj):
        payload = json.dumps(obj, indent=None).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def dispatch(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            return self.reply(400, {"error": "bad json: %s" % e})
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            status, obj = self.server.app.control(self.command, url.path, q, body)
        except VaultError as e:
            status, obj = e.status, {"error": "; ".join(e.errors)}
        except Exception as e:
            traceback.print_exc()
            status, obj = 500, {"error": str(e)}
        self.reply(status, obj)


class App:
    def __init__(self, args, cfg):
        self.args = args
        self.verbose = args.verbose
        self.max_body = args.max_request_size
        self.max_log = args.max_log
        self.workdir = os.path.abspath(args.dir)
        os.makedirs(self.workdir, exist_ok=True)
        self.state = State(cfg, self.workdir)
        self.setup_pki()
        self.setup_tls()
        self.vault = Vault(self.state, self.ca)
        self.httpd = None
        self.port = args.port
        self.down_timer = None
        self.listen_lock = threading.Lock()
        self.quit = threading.Event()

    # certificates -----------------------------------------------------------
    def setup_pki(self):
        d = self.workdir
        root = make_ca(d, "pki-root", "vaultd Root CA")
        if self.args.pki_layout == "root":
            issuing = root
            chain = [open(root[0]).read().strip()]
        else:
            issuing = make_ca(d, "pki-int", "vaultd Intermediate CA", parent=root)
            chain = [open(issuing[0]).read().strip(), open(root[0]).read().strip()]
        atomic_write(os.path.join(d, "pki-chain.pem"), "\n".join(chain) + "\n")
        infos = [CertInfo(c) for c in chain]
        self.ca = {"issuing_cert": issuing[0], "issuing_key": issuing[1], "chain": chain,
                   "root_file": root[0], "chain_file": os.path.join(d, "pki-chain.pem"),
                   "issuing_not_after": infos[0].not_after,
                   "self_signed": [i.self_signed for i in infos],
                   "serials": {i.serial for i in infos},
                   "issuer_id": str(uuid.uuid5(uuid.NAMESPACE_OID, infos[0].serial)),
                   "key_id": str(uuid.uuid5(uuid.NAMESPACE_URL, infos[0].serial)),
                   "issuer_name": "default-issuer",
                   "rogue": lambda: make_ca(d, "rogue-ca", "vaultd Rogue CA (untrusted)")}

    def setup_tls(self):
        d = self.workdir
        if self.args.tls_cert and self.args.tls_key:
            self.tls_cert, self.tls_key = self.args.tls_cert, self.args.tls_key
            self.tls_ca = self.args.tls_ca or self.args.tls_cert
        else:
            ca = make_ca(d, "tls-ca", "vaultd TLS CA")
            self.tls_ca = ca[0]
            self.tls_cert = os.path.join(d, "server.pem")
            self.tls_key = os.path.join(d, "server.key")
            if not (os.path.exists(self.tls_cert) and os.path.exists(self.tls_key)):
                key, csr = new_key_and_csr("ec", 256)
                with open(self.tls_key, "w") as f:
                    f.write(key + "\n")
                os.chmod(self.tls_key, 0o600)
                now = int(time.time())
                cert = sign_leaf(ca[0], ca[1], csr, "localhost", [
                    "basicConstraints=critical,CA:FALSE",
                    "keyUsage=critical,digitalSignature,keyAgreement",
                    "extendedKeyUsage=serverAuth",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
                    fmt_serial(secrets.randbits(120) | 1 << 119), now - 86400,
                    now + 3650 * 86400)
                atomic_write(self.tls_cert, cert + "\n")
        self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_ctx.load_cert_chain(self.tls_cert, self.tls_key)
        self.ssl_ctx.set_alpn_protocols(["http/1.1"])
        self.active_ctx = self.ssl_ctx

    def rogue_tls_ctx(self):
        """A server context whose certificate chains to a CA clients don't trust."""
        d = self.workdir
        ca = make_ca(d, "rogue-tls-ca", "vaultd Rogue TLS CA (untrusted)")
        cert, key = os.path.join(d, "rogue-server.pem"), os.path.join(d, "rogue-server.key")
        if not (os.path.exists(cert) and os.path.exists(key)):
            k, csr = new_key_and_csr("ec", 256)
            atomic_write(key, k + "\n", 0o600)
            now = int(time.time())
            c = sign_leaf(ca[0], ca[1], csr, "localhost", [
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyAgreement",
                "extendedKeyUsage=serverAuth",
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
                fmt_serial(secrets.randbits(120) | 1 << 119), now - 86400, now + 3650 * 86400)
            atomic_write(cert, c + "\n")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    # listeners --------------------------------------------------------------
    def listen(self):
        with self.listen_lock:
            if self.httpd is not None:
                return False
            ctx = None if self.args.plain_http else self.active_ctx
            last = None
            for _ in range(50):
                try:
                    srv = BoundedServer((self.args.listen, self.port), VaultHandler, self,
                                        ctx, self.args.max_threads)
                    break
                except OSError as e:
                    last = e
                    time.sleep(0.1)
            else:
                raise last
            self.port = srv.server_address[1]
            self.httpd = srv
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True).start()
            return True

    def unlisten(self):
        with self.listen_lock:
            srv, self.httpd = self.httpd, None
        if srv is None:
            return False
        srv.shutdown()
        srv.server_close()
        srv.kill_connections()
        return True

    # fault rules ------------------------------------------------------------
    def take_rule(self, method, path):
        st = self.state
        with st.lock:
            for r in st.rules:
                if r.get("method") and r["method"].upper() != method:
                    continue
                p = r.get("path")
                if p:
                    ok = (re.search(p, path) is not None) if r.get("regex") \
                        else path.startswith(p.strip("/"))
                    if not ok:
                        continue
                if r.get("skip", 0) > 0:
                    r["skip"] -= 1
                    continue
                if r["count"] is not None:
                    if r["count"] <= 0:
                        continue
                    r["count"] -= 1
                r["hits"] = r.get("hits", 0) + 1
                out = dict(r)
                st.rules = [x for x in st.rules if x["count"] is None or x["count"] > 0]
                return out
        return None

    def add_rule(self, r):
        st = self.state
        r = dict(r)
        c = r.get("count", 1)
        r["count"] = None if c is None or int(c) < 0 else int(c)
        with st.lock:
            st.rule_seq += 1
            r["id"] = st.rule_seq
            st.rules.append(r)
        return r

    # control API ------------------------------------------------------------
    def control(self, method, path, q, b):
        st = self.state
        v = self.vault
        p = path.rstrip("/")
        if not p.startswith("/_test"):
            raise VaultError(404, ["not found"])
        p = p[len("/_test"):] or "/"
        if p in ("/", "/state") and method == "GET":
            with st.lock:
                return 200, {"port": self.port, "control_port": self.control_port,
                             "listening": self.httpd is not None, "sealed": st.sealed,
                             "clock_offset": st.clock_offset, "now": st.now(),
                             "options": st.opts, "rules": st.rules,
                             "tokens": len(st.tokens), "issued": len(st.issued),
                             "requests": st.req_seq, "ca_file": self.tls_ca,
                             "pki_root_file": self.ca["root_file"],
                             "pki_chain_file": self.ca["chain_file"]}
        if p == "/fail":
            r = self.add_rule(b)
            return 200, {"rule": r}
        if p == "/latency":
            r = dict(b)
            r.setdefault("count", -1)
            r["mode"] = "pass"
            r["delay"] = float(b.get("seconds", b.get("delay", 1)))
            return 200, {"rule": self.add_rule(r)}
        if p == "/rules":
            if method == "DELETE":
                with st.lock:
                    st.rules = []
                return 200, {"rules": []}
            with st.lock:
                return 200, {"rules": list(st.rules)}
        if p in ("/clear", "/reset"):
            with st.lock:
                st.rules = []
                if p == "/reset":
                    st.sealed = False
                    st.clock_offset = 0.0
                    st.requests = []
                    st.counters = {}
            if p == "/reset":
                if self.active_ctx is not self.ssl_ctx:
                    self.unlisten()
                    self.active_ctx = self.ssl_ctx
                self.listen()
            return 200, {"ok": True}
        if p == "/down":
            if self.down_timer:
                self.down_timer.cancel()
            was = self.unlisten()
            secs = b.get("seconds")
            if secs:
                self.down_timer = threading.Timer(float(secs), self.listen)
                self.down_timer.daemon = True
                self.down_timer.start()
            return 200, {"was_listening": was, "port": self.port}
        if p == "/up":
            if self.down_timer:
                self.down_timer.cancel()
            return 200, {"started": self.listen(), "port": self.port}
        if p == "/tls":
            mode = b.get("mode", "normal")
            if mode == "untrusted":
                ctx = self.rogue_tls_ctx()
            elif mode == "normal":
                ctx = self.ssl_ctx
            else:
                raise bad("mode must be normal or untrusted")
            self.unlisten()
            self.active_ctx = ctx
            self.listen()
            return 200, {"mode": mode, "port": self.port}
        if p in ("/seal", "/unseal"):
            st.sealed = (p == "/seal")
            return 200, {"sealed": st.sealed}
        if p == "/clock":
            with st.lock:
                if "advance" in b:
                    st.clock_offset += float(b["advance"])
                if "offset" in b:
                    st.clock_offset = float(b["offset"])
                return 200, {"offset": st.clock_offset, "now": st.now()}
        if p == "/config":
            with st.lock:
                for k, val in b.items():
                    if k == "namespaces":
                        st.namespaces = [n.strip("/") for n in val]
                    elif k == "policies":
                        st.policies = val
                    else:
                        st.opts[k] = val
                return 200, {"options": st.opts, "namespaces": st.namespaces}
        if p == "/policy":
            with st.lock:
                if st.policies is None:
                    st.policies = {}
                st.policies[b["name"]] = b.get("paths", [])
                return 200, {"policies": st.policies}
        if p == "/token/create":
            tok = st.create_token(b)
            return 200, {"token": tok.id, "accessor": tok.accessor, "ttl": tok.ttl}
        if p in ("/token/expire", "/token/revoke", "/token/update"):
            with st.lock:
                if b.get("all"):
                    toks = [t for t in st.tokens.values() if "root" not in t.policies]
                else:
                    t = st.find_token(b.get("token") or b.get("accessor") or "")
                    if t is None:
                        raise VaultError(404, ["no such token"])
                    toks = [t]
                for t in toks:
                    if p == "/token/expire":
                        t.expire = st.now() - 1
                    elif p == "/token/revoke":
                        t.revoked = True
                    else:
                        if "ttl" in b:
                            t.expire = st.now() + parse_duration(b["ttl"])
                        for k in ("renewable", "num_uses", "max_ttl", "explicit_max_ttl",
                                  "base_ttl", "period"):
                            if k in b:
                                setattr(t, k, b[k] if k == "renewable" else parse_duration(b[k]))
                return 200, {"tokens": [t.id for t in toks]}
        if p == "/tokens":
            now = st.now()
            with st.lock:
                return 200, {"tokens": [{"id": t.id, "accessor": t.accessor,
                                         "policies": t.policies, "type": t.type,
                                         "valid": t.valid(now),
                                         "ttl": int(t.expire - now) if t.expire else 0,
                                         "revoked": t.revoked, "path": t.path,
                                         "meta": t.meta}
                                        for t in st.tokens.values()]}
        if p == "/approle/role":
            r = st.set_approle(b["name"], {k: x for k, x in b.items() if k != "name"})
            return 200, {"role_id": r["role_id"], "secret_ids": sorted(r["secret_ids"])}
        if p == "/approle/secret_id":
            sid = st.add_secret_id(b["role_name"], b)
            return 200, {"secret_id": sid}
        if p == "/pki/role":
            r = st.set_pki_role(b.get("mount", "pki"), b["name"],
                                {k: x for k, x in b.items() if k not in ("name", "mount")})
            return 200, {"role": r}
        if p == "/pki/issued":
            with st.lock:
                out = []
                for e in st.issued.values():
                    e = dict(e)
                    e["revoked"] = e["serial_number"] in st.revoked
                    if q.get("pem") != "1":
                        e.pop("certificate", None)
                    out.append(e)
            out.sort(key=lambda e: e["issued_at"])
            return 200, {"issued": out}
        if p == "/kv/put":
            meta = st.kv_put(b.get("mount", "secret"), b["path"], b.get("data", {}),
                             custom_metadata=b.get("custom_metadata"))
            return 200, {"metadata": meta}
        if p in ("/kv/delete", "/kv/destroy", "/kv/undelete"):
            with st.lock:
                m = st.kv.get(b.get("mount", "secret").strip("/"))
                ent = m and m["data"].get(b["path"].strip("/"))
                if not ent or m["version"] != 2:
                    raise VaultError(404, ["no such kv v2 path"])
                vers = b.get("versions") or [len(ent["versions"])]
                for n in vers:
                    ver = ent["versions"][int(n) - 1]
                    if p == "/kv/delete":
                        ver["deletion_time"] = st.now() + float(b.get("in_seconds", 0))
                    elif p == "/kv/destroy":
                        ver["destroyed"] = True
                    else:
                        ver["deletion_time"] = None
            return 200, {"ok": True}
        if p == "/lease":
            now = st.now()
            lid = b.get("lease_id") or "%s/%s" % (b.get("path", "database/creds/ro"),
                                                   rand_token(24))
            with st.lock:
                st.leases[lid] = Lease(lid, b.get("path", "database/creds/ro"), now,
                                       parse_duration(b.get("ttl", 60)),
                                       bool(b.get("renewable", True)),
                                       max_ttl=parse_duration(b.get("max_ttl", 0)))
            return 200, {"lease_id": lid}
        if p == "/requests":
            if method == "DELETE":
                with st.lock:
                    st.requests = []
                return 200, {"requests": []}
            since = int(q.get("since", 0))
            sub = q.get("path")
            with st.lock:
                out = [r for r in st.requests if r["seq"] > since
                       and (not sub or sub in (r.get("route") or r["path"]))]
                return 200, {"requests": out, "last": st.req_seq}
        if p == "/counters":
            with st.lock:
                return 200, {"counters": dict(st.counters)}
        if p == "/quit":
            threading.Timer(0.1, self.quit.set).start()
            return 200, {"ok": True}
        raise VaultError(404, ["unknown control endpoint %s" % path])

    def run(self):
        self.listen()
        self.control_srv = BoundedServer((self.args.listen, self.args.control_port),
                                         ControlHandler, self, None, 32)
        self.control_port = self.control_srv.server_address[1]
        threading.Thread(target=self.control_srv.serve_forever,
                         kwargs={"poll_interval": 0.05}, daemon=True).start()
        scheme = "http" if self.args.plain_http else "https"
        info = {"port": self.port, "control_port": self.control_port,
                "address": "%s://%s:%d" % (scheme, self.args.listen, self.port),
                "control": "http://%s:%d" % (self.args.listen, self.control_port),
                "ca_file": self.tls_ca, "pki_root_file": self.ca["root_file"],
                "pki_chain_file": self.ca["chain_file"], "dir": self.workdir,
                "root_token": self.state.cfg.get("root_token"), "pid": os.getpid()}
        if self.args.ports_file:
            atomic_write(self.args.ports_file, json.dumps(info, indent=1) + "\n")
        if self.args.env_file:
            atomic_write(self.args.env_file, "".join(
                "%s=%s\n" % kv for kv in [
                    ("VAULT_ADDR", info["address"]), ("VAULT_CACERT", info["ca_file"]),
                    ("VAULTD_PORT", info["port"]), ("VAULTD_CONTROL", info["control"]),
                    ("VAULTD_CONTROL_PORT", info["control_port"]),
                    ("VAULTD_PKI_ROOT", info["pki_root_file"]),
                    ("VAULTD_PKI_CHAIN", info["pki_chain_file"]),
                    ("VAULTD_PID", info["pid"])]))
        print("vaultd ready port=%d control_port=%d ca_file=%s pid=%d"
              % (self.port, self.control_port, self.tls_ca, os.getpid()), flush=True)
        signal.signal(signal.SIGTERM, lambda *a: self.quit.set())
        signal.signal(signal.SIGINT, lambda *a: self.quit.set())
        ppid = os.getppid()
        while not self.quit.wait(0.5):
            if self.args.exit_with_parent and os.getppid() != ppid:
                break
        self.unlisten()
        self.control_srv.shutdown()
        self.control_srv.server_close()


def load_config(path):
    cfg = json.loads(json.dumps(DEFAULT_CONFIG))
    if path:
        with open(path) as f:
            user = json.load(f)
        for k, v in user.items():
            if k == "pki" and not user.get("replace_defaults"):
                for mount, m in v.items():
                    cur = cfg["pki"].setdefault(mount, {"roles": {}})
                    cur.setdefault("roles", {}).update(m.get("roles") or {})
            elif k in ("approle", "kv") and not user.get("replace_defaults"):
                cfg[k].update(v)
            else:
                cfg[k] = v
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description="Vault HTTP API test double")
    ap.add_argument("--listen", default="127.0.0.1", help="127.0.0.1 (default) or ::1")
    ap.add_argument("--port", type=int, default=0, help="Vault API port (0 = kernel picks)")
    ap.add_argument("--control-port", type=int, default=0, help="control API port (0 = pick)")
    ap.add_argument("--ports-file", help="write JSON {port, control_port, ca_file, ...} here")
    ap.add_argument("--env-file", help="write VAULT_ADDR=... shell assignments here")
    ap.add_argument("--dir", help="state dir for CA/TLS files (reused if present)")
    ap.add_argument("--config", help="JSON config file (tokens, approle, pki roles, kv, ...)")
    ap.add_argument("--root-token", help="root token id (default: root)")
    ap.add_argument("--pki-layout", choices=("intermediate", "root"), default="intermediate")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-ca")
    ap.add_argument("--plain-http", action="store_true", help="serve the API without TLS")
    ap.add_argument("--legacy-invalid-token", action="store_true",
                    help="403 'permission denied' only (no 'invalid token')")
    ap.add_argument("--error-style", choices=("multierror", "bare"))
    ap.add_argument("--require-request-header", action="store_true")
    ap.add_argument("--namespaces", help="comma list of namespaces to enable")
    ap.add_argument("--max-threads", type=int, default=128)
    ap.add_argument("--max-request-size", type=int, default=MAX_BODY)
    ap.add_argument("--max-log", type=int, default=100000)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="exit when the parent process goes away (test harnesses)")
    args = ap.parse_args(argv)
    if args.listen not in ("127.0.0.1", "::1"):
        ap.error("vaultd listens on loopback only")
    cfg = load_config(args.config)
    if args.root_token is not None:
        cfg["root_token"] = args.root_token
    opts = cfg.setdefault("options", {}) or {}
    cfg["options"] = opts
    if args.legacy_invalid_token:
        opts["legacy_invalid_token"] = True
    if args.error_style:
        opts["error_style"] = args.error_style
    if args.require_request_header:
        opts["require_request_header"] = True
    if args.namespaces:
        cfg["namespaces"] = parse_slice(args.namespaces)
    if not args.dir:
        args.dir = tempfile.mkdtemp(prefix="vaultd-")
    App(args, cfg).run()


if __name__ == "__main__":
    main()
