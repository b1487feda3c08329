# shellcheck shell=bash
# log.format: json (what a user sees): every line mtlsd writes is one JSON
# object with time, program and level; a log line carries "msg", an access
# line its fields ("status" a number, a field with nothing to say null).
# Instance: jl (format json, access_log true).

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
mtlsd_write_config jl
sed -i 's/^log: {level: \([a-z]*\), access_log: true}$/log: {level: \1, format: json, access_log: true}/' \
	"$TMP/inst/jl/mtlsd.yaml"
mtlsd_mapping_file jl jl.yaml <<EOT
mappings:
  - name: jl
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOT
mtlsd_start jl || return 0
JL_PORT=$(mtlsd_port jl jl)
req jl-1 "http://127.0.0.1:$JL_PORT/?t=jl-1"
chk_eq "status" 200 "$R_STATUS"
mtlsd_stop jl # the access line is written at the latest on exit

# jl_check: one verdict line per check, from every line of the log
jl_check() {
	python3 - "$TMP/inst/jl/mtlsd.log" <<'PYEOF'
import json, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
objs, bad = [], []
for l in lines:
    try:
        objs.append(json.loads(l))
    except ValueError:
        bad.append(l)
print("not JSON:", len(bad), bad[:1])
ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
print("without time/program/level:", sum(1 for o in objs if not (ts.match(o.get("time", ""))
      and o.get("program") == "mtlsd" and o.get("level") in ("error", "warn", "info", "debug", "access"))))
ready = [o for o in objs if o.get("level") == "info" and o.get("msg", "").startswith("ready: generation 1,")]
print("ready lines:", len(ready))
acc = [o for o in objs if o.get("level") == "access" and o.get("path") == "/?t=jl-1"]
print("access lines:", len(acc))
a = acc[0] if acc else {}
print("access fields:", a.get("mapping"), a.get("method"), type(a.get("status")).__name__, a.get("status"),
      a.get("upstream_conn"), re.match(r"^127\.0\.0\.1:\d+$", a.get("client", "")) is not None,
      type(a.get("resp_bytes")).__name__, len(a.get("cert_serial") or "") > 0)
PYEOF
}
out=$(jl_check)
chk_eq "lines that are not JSON" "not JSON: 0 []" "$(grep '^not JSON' <<<"$out")"
chk_eq "lines without time, program, level" "without time/program/level: 0" "$(grep '^without' <<<"$out")"
chk_eq "ready line" "ready lines: 1" "$(grep '^ready' <<<"$out")"
chk_eq "access line" "access lines: 1" "$(grep '^access lines' <<<"$out")"
chk_eq "access fields" "access fields: jl GET int 200 new True int True" "$(grep '^access fields' <<<"$out")"
t_done "log.format json: every line is a JSON object; the access line has typed fields"
