"""Offline checks of deploy/: the Dockerfile and its build context, the Helm chart (lint, render,
Kubernetes schemas, the properties issue 15 asks for) for its defaults and each example, the
configuration it renders against `vigie check-config`, and the metric names of the Grafana
dashboard and the PrometheusRule against those Vigie exports. Run by tests/deploy/run."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHART = ROOT / "deploy/helm/vigie"
EXAMPLES = sorted((ROOT / "deploy/helm/examples").glob("*.yaml"))
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas here.
KUBE_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): HERE / "schemas/servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): HERE / "schemas/prometheusrule-monitoring-v1.json",
}

failures: list[str] = []
checked = 0


def check(ok: bool, what: str) -> bool:
    global checked
    checked += 1
    if not ok:
        failures.append(what)
        print(f"  FAIL {what}")
    return ok


def section(title: str) -> None:
    print(f"-- {title}")


# ---------------------------------------------------------------------------------------------
def dockerfile() -> None:
    section("deploy/Dockerfile: hadolint, shape, build context")
    path = ROOT / "deploy/Dockerfile"
    run = subprocess.run([str(Path(sys.executable).parent / "hadolint"), "--no-color", str(path)], capture_output=True, text=True)
    check(run.returncode == 0, f"hadolint deploy/Dockerfile:\n{run.stdout}{run.stderr}")
    text = path.read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith(("#", " "))]
    keywords = [i[0] for i in instructions]
    froms = [i[1] for i in instructions if i[0] == "FROM"]
    toolchain = re.search(r'rust-version = "([0-9.]+)"', (ROOT / "Cargo.toml").read_text()).group(1)
    check(len(froms) >= 2, "multi-stage: a build stage and a runtime stage")
    check(froms[0].startswith(f"docker.io/library/rust:{toolchain}"), f"the build stage is on the workspace's toolchain {toolchain}: {froms[0]}")
    check("cargo build --release --locked -p vigie-gateway" in text, "the build is `cargo build --release --locked -p vigie-gateway`")
    check("HEALTHCHECK" not in keywords, "no HEALTHCHECK (Kubernetes probes)")
    users = [i[1] for i in instructions if i[0] == "USER"]
    check(bool(users) and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1].strip()) is not None, f"the runtime user is numeric and not root: {users}")
    check(any(i[0] == "VOLUME" and "/var/lib/vigie" in i[1] for i in instructions), "the writable path is a declared VOLUME")
    check('ENTRYPOINT ["vigie"]' in text and 'CMD ["serve", "--config"' in text, "ENTRYPOINT vigie, CMD serve --config")
    labels = set(re.findall(r"org\.opencontainers\.image\.[a-z]+", text))
    check({"org.opencontainers.image.title", "org.opencontainers.image.version", "org.opencontainers.image.revision"} <= labels, f"OCI labels: {sorted(labels)}")
    print(f"  hadolint clean; {len(froms)} stages; user {users[-1]}; labels {len(labels)}")

    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    regexes = [dockerignore_regex(p) for p in patterns]
    excluded = lambda rel: any(r.fullmatch(rel) for r in regexes)  # noqa: E731
    for rel in ["target/debug/vigie", "adapters/psc/target/x", "conformance/psc-sandbox/node_modules/x/index.js",
                "tests/oidc-client/node_modules/x", "tests/deploy/.venv/bin/python", "conformance/dmp-sandbox/.venv/x",
                ".git/HEAD", "vigie-demo/demo.json"]:
        check(excluded(rel), f".dockerignore excludes {rel}")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    needed = [f for f in tracked if f in ("Cargo.toml", "Cargo.lock") or f.startswith(("gateway/", "adapters/", "policies/"))]
    kept_out = [f for f in needed if excluded(f)]
    check(not kept_out, f"the workspace's sources are in the context (excluded: {kept_out[:5]})")
    # What `docker build .` would send: every file not excluded, walking the real tree.
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not excluded(rel_dir + d)]
        for name in filenames:
            if not excluded(rel_dir + name):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, name)) if not os.path.islink(os.path.join(dirpath, name)) else 0
    check(size < 100 * 2**20, f"the build context is small ({size / 2**20:.1f} MiB)")
    print(f"  build context: {files} files, {size / 2**20:.1f} MiB ({len(needed)} workspace sources kept)")


def dockerignore_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore matching (Go filepath.Match plus `**`); a match on a directory
    excludes what is under it."""
    out, i = "", 0
    pattern = pattern.lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "(?:/.*)?")


# ---------------------------------------------------------------------------------------------
def render(values: dict, label: str) -> list[dict]:
    """Schema, strict lint on both Kubernetes versions, then the manifests of an install."""
    chart = helm.Chart.load(str(CHART))
    try:
        chart.validate_schema(values)
        check(True, "")
    except helm.HelmError as e:
        check(False, f"{label}: values.schema.json refuses the values: {e}")
    for version in KUBE_VERSIONS:
        report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        check(not problems, f"{label}: helm lint --strict (Kubernetes {version}): {problems}")
    manifests = chart.render(values, name="vigie", namespace="vigie", is_install=True)
    docs = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            check("vigie" in text, f"{label}: NOTES.txt renders")
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {})["namespace"] = "vigie"
                docs.append(doc)
    return docs


def validate(docs: list[dict], label: str) -> None:
    """Every manifest against the Kubernetes schemas (strict: unknown fields refused), the
    Prometheus Operator kinds against the vendored subset schemas."""
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in CRD_SCHEMAS:
            # The CRD subset schemas do not know namespace-free objects: the namespace is ours.
            errors = list(jsonschema.Draft202012Validator(json.loads(CRD_SCHEMAS[key].read_text())).iter_errors(doc))
            check(not errors, f"{label}: {doc['kind']} {doc['metadata']['name']} (vendored schema): {[e.message for e in errors]}")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                check(True, "")
            except Exception as e:  # ValidationError, SchemaNotFoundError
                check(False, f"{label}: {doc['kind']} {doc['metadata'].get('name')} (Kubernetes {version}, strict): {e}")


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]) for d in docs if d["kind"] in ("Deployment", "Job")]


def properties(docs: list[dict], values: dict, label: str) -> None:
    """What issue 15 asks of the chart, on the rendered objects."""
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    [deploy] = by_kind["Deployment"]
    spec = deploy["spec"]
    strategy = spec["strategy"]
    if values.get("strategy", "RollingUpdate") == "RollingUpdate":
        check(strategy.get("rollingUpdate") == {"maxUnavailable": 0, "maxSurge": 1}, f"{label}: rolling update maxUnavailable 0, maxSurge 1: {strategy}")
    pod = spec["template"]["spec"]
    anti = pod.get("affinity", {}).get("podAntiAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution", [])
    check(any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname" for t in anti), f"{label}: pod anti-affinity by hostname")
    check(pod.get("enableServiceLinks") is False, f"{label}: enableServiceLinks false")
    server = values.get("config", {}).get("server", {})
    stop_secs = values.get("preStopSleepSeconds", 0) + server.get("drain_secs", 5) + server.get("shutdown_timeout_secs", 20)
    check(pod["terminationGracePeriodSeconds"] > stop_secs, f"{label}: terminationGracePeriodSeconds outlasts preStop + server.drain_secs + server.shutdown_timeout_secs ({stop_secs} s)")
    [vigie] = pod["containers"]
    ops_port = next(p["containerPort"] for p in vigie["ports"] if p["name"] == "ops")
    check(vigie["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}, f"{label}: liveness on /healthz (ops port)")
    check(vigie["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}, f"{label}: readiness on /readyz (ops port)")
    check("startupProbe" in vigie, f"{label}: a startup probe")
    check("memory" in vigie["resources"].get("limits", {}) and "memory" in vigie["resources"].get("requests", {}), f"{label}: memory request and limit")
    for name, p in pod_specs(docs):
        check(p["securityContext"].get("runAsNonRoot") is True and p["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", f"{label}: {name}: pod runAsNonRoot, seccomp RuntimeDefault")
        check(p.get("automountServiceAccountToken") is False, f"{label}: {name}: no service account token")
        for c in p.get("initContainers", []) + p["containers"]:
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True, f"{label}: {name}/{c['name']}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{label}: {name}/{c['name']}: allowPrivilegeEscalation false")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{label}: {name}/{c['name']}: capabilities drop ALL")
            check(sc.get("runAsNonRoot") is True, f"{label}: {name}/{c['name']}: runAsNonRoot")
            writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
            check(sorted(writable) == ["/tmp", "/var/lib/vigie"], f"{label}: {name}/{c['name']}: writable only /tmp and /var/lib/vigie: {writable}")
            for m in c["volumeMounts"]:
                check("subPath" not in m, f"{label}: {name}/{c['name']}: {m['mountPath']} without subPath (Secret updates reach the pod)")
            for e in c.get("env", []):
                check("value" not in e or not e["name"].startswith("VIGIE_") or e["name"] == "VIGIE_LOG", f"{label}: {name}/{c['name']}: {e['name']} by reference, not by value")
        check(all(v["name"] != "keys" or "secret" in v for v in p["volumes"]), f"{label}: {name}: signing keys from a Secret")

    config_maps = by_kind.get("ConfigMap", [])
    secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for _, p in pod_specs(docs) for c in p["containers"] for e in c.get("env", []) if "valueFrom" in e}
    for cm in config_maps:
        toml = cm["data"]["vigie.toml"]
        for secret in (r"(?m)^\s*(password|client_secret|pkcs12_password|token)\s*=", r"\b(redis|rediss|postgres|postgresql)(\+sentinel)?://",
                       r"BEGIN [A-Z ]*PRIVATE KEY", r"\btoken_hash\b"):
            check(re.search(secret, toml) is None, f"{label}: ConfigMap {cm['metadata']['name']} holds no secret (/{secret}/)")
        check(f"ops_listen = \"0.0.0.0:{ops_port}\"" in toml, f"{label}: ConfigMap {cm['metadata']['name']}: server.ops_listen on the probes' port")
    check(not by_kind.get("Secret"), f"{label}: the chart renders no Secret (by reference only)")

    migrate = [d for d in by_kind.get("Job", []) if d["metadata"]["name"].endswith("-migrate")]
    if values.get("migration", {}).get("enabled", True):
        [job] = migrate
        ann = job["metadata"]["annotations"]
        check(ann.get("helm.sh/hook") == "pre-install,pre-upgrade", f"{label}: migration Job is a pre-install,pre-upgrade hook")
        check("before-hook-creation" in ann.get("helm.sh/hook-delete-policy", ""), f"{label}: migration Job hook delete policy")
        hook_cm = [c for c in config_maps if c["metadata"]["name"] == job["metadata"]["name"]]
        check(len(hook_cm) == 1 and int(hook_cm[0]["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(ann["helm.sh/hook-weight"]),
              f"{label}: the Job's configuration is a hook created before it")
        jp = job["spec"]["template"]["spec"]
        check([c["args"][0] for c in jp["initContainers"]] == ["check-config"] and jp["containers"][0]["args"][:2] == ["migrate", "--config"],
              f"{label}: the Job runs check-config, then migrate --config")
        check(hook_cm[0]["data"] == next(c for c in config_maps if c["metadata"]["name"] == deploy["metadata"]["name"])["data"],
              f"{label}: the Job checks the configuration the pods run")
    if values.get("podDisruptionBudget", {}).get("enabled", True):
        check(len(by_kind.get("PodDisruptionBudget", [])) == 1, f"{label}: a PodDisruptionBudget")
    if values.get("autoscaling", {}).get("enabled"):
        [hpa] = by_kind["HorizontalPodAutoscaler"]
        check(hpa["apiVersion"] == "autoscaling/v2" and "replicas" not in spec, f"{label}: HPA autoscaling/v2 owns the replica count")
    svc_ports = {p["name"]: p for s in by_kind["Service"] for p in s["spec"]["ports"]}
    check({"https", "ops"} <= set(svc_ports), f"{label}: the Service has the https and ops ports")
    for ing in by_kind.get("Ingress", []):
        mode = values.get("ingress", {}).get("cardLogin", "passthrough")
        ann = ing["metadata"].get("annotations", {})
        if mode == "passthrough":
            check(ann.get("nginx.ingress.kubernetes.io/ssl-passthrough") == "true", f"{label}: Ingress passes TLS through for card login")
        if mode == "header":
            check(ann.get("nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream") == "true"
                  and ann.get("nginx.ingress.kubernetes.io/auth-tls-verify-client") == "optional_no_ca", f"{label}: Ingress asks for the card and passes it")
            cidrs = values["ingress"]["controllerCidrs"]
            toml = next(c for c in config_maps if c["metadata"]["name"] == deploy["metadata"]["name"])["data"]["vigie.toml"]
            check(f'ingress_header_from = {json.dumps(cidrs)}'.replace('","', '", "') in toml and 'ingress_header = "ssl-client-cert"' in toml,
                  f"{label}: Vigie believes the card header from the controller only:\n{toml}")
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]
        check(backend == {"name": "https"}, f"{label}: the Ingress never routes the ops port")
    if values.get("networkPolicy", {}).get("enabled"):
        [np] = by_kind["NetworkPolicy"]
        check(set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{label}: NetworkPolicy restricts both ways")
        egress = np["spec"]["egress"]
        check(all("to" in r or all(p["port"] == 53 for p in r["ports"]) for r in egress), f"{label}: egress is DNS or named CIDRs")
        check(all("ipBlock" in t for r in egress for t in r.get("to", [])), f"{label}: egress destinations are CIDRs")
        rendered = {(t["ipBlock"]["cidr"], p["port"]) for r in egress for t in r.get("to", []) for p in r["ports"]}
        for dest, rules in values["networkPolicy"].get("egress", {}).items():
            wanted = {(c, port) for rule in rules for c in rule["cidrs"] for port in rule["ports"]}
            check(wanted <= rendered, f"{label}: egress to {dest} is rendered ({sorted(wanted - rendered)} missing)")
    check(secret_refs or values.get("store", {}).get("kind") == "embedded", f"{label}: the URLs come from Secrets ({sorted(secret_refs)})")
    kinds = ", ".join(f"{k}×{len(v)}" if len(v) > 1 else k for k, v in sorted(by_kind.items()))
    print(f"  {label}: {len(docs)} objects ({kinds})")


# ---------------------------------------------------------------------------------------------
def check_config(docs: list[dict], values: dict, label: str, vigie: Path, work: Path) -> None:
    """The rendered vigie.toml through `vigie check-config`, with the files the pod would have
    mounted made in a temp dir (paths under /etc/vigie and /var/lib/vigie moved there) and the
    Secret-fed environment given placeholder values."""
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "vigie")
    root = work / re.sub(r"[^A-Za-z0-9.-]+", "_", label)
    etc, var = root / "etc", root / "var"
    (etc / "tls").mkdir(parents=True)
    (etc / "keys").mkdir()
    var.mkdir()
    toml = cm["data"]["vigie.toml"].replace('"/etc/vigie/', f'"{etc}/').replace('"/var/lib/vigie/', f'"{var}/').replace('"/var/lib/vigie"', f'"{var}"')
    toml = toml.replace("sqlite:///var/lib/vigie/", f"sqlite://{var}/")
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=vigie.test", "-keyout", etc / "tls/tls.key", "-out", etc / "tls/tls.crt"])
    key_file = values.get("signingKeys", {}).get("key", "keys.json")
    subprocess.run([vigie, "keys", "generate", "--out", etc / "keys" / key_file], check=True, capture_output=True)
    anchors = values.get("cards", {}).get("trustAnchors", [])
    if anchors:
        (etc / "igc-sante").mkdir()
        for name in anchors:
            openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                     "-subj", f"/CN=test {name}", "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", root / "ca.key", "-out", etc / "igc-sante" / name])
    if values.get("psc", {}).get("existingSecret"):
        (etc / "psc").mkdir()
        (etc / "psc/client-secret").write_text("placeholder-client-secret-for-check-config\n")
    config = root / "vigie.toml"
    config.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    for _, p in pod_specs(docs)[:1]:
        for e in p["containers"][0].get("env", []):
            if e["name"] == "VIGIE_STORE__URL":
                env[e["name"]] = "redis://127.0.0.1:9/0"
            elif e["name"] == "VIGIE_DIRECTORY__URL":
                env[e["name"]] = "postgres://vigie@127.0.0.1:9/vigie"
            elif e["name"] == "VIGIE_ADMIN__TOKENS":
                env[e["name"]] = '[{name="drh", token_hash="sha256:2jmj7l5rSw0yVb_vlWAYkK_YBwk2jmj7l5rSw0yVb_s", roles=["cards"], scopes=["cards:read"]}]'
            elif "value" in e:
                env[e["name"]] = e["value"]
    run = subprocess.run([vigie, "check-config", config], capture_output=True, text=True, env=env)
    check(run.returncode == 0, f"{label}: vigie check-config refuses the rendered configuration:\n{run.stdout}{run.stderr}")
    print(f"  {label}: vigie check-config: {(run.stdout or run.stderr).strip()}")
    # The same check must fail when a mounted file is missing, naming its key: it is not a
    # check that passes whatever it is given.
    (etc / "keys" / key_file).unlink()
    run = subprocess.run([vigie, "check-config", config], capture_output=True, text=True, env=env)
    check(run.returncode != 0 and "keys.file" in run.stderr, f"{label}: check-config names keys.file when the keys Secret is missing: {run.stderr}")


def openssl(args: list) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


# ---------------------------------------------------------------------------------------------
def refusals() -> None:
    """The chart's own guards: a typo in the values, a secret in `config`."""
    section("the chart refuses bad values")
    chart = helm.Chart.load(str(CHART))
    for values, expected in [({"replicas": 3}, "replicas"), ({"ingress": {"cardlogin": "header"}}, "cardlogin"),
                             ({"store": {"kind": "memcached"}}, "kind"), ({"issuer": "http://sso.example"}, "issuer")]:
        try:
            chart.validate_schema(values)
            check(False, f"values.schema.json accepts {values}")
        except helm.HelmError as e:
            check(expected in str(e), f"values.schema.json refuses {values} naming {expected!r}: {e}")
    for config, expected in [({"store": {"url": "redis://:pw@redis:6379"}}, "config.store.url"),
                             ({"psc": {"client_secret": "s"}}, "config.psc.client_secret")]:
        try:
            chart.render({"config": config}, name="vigie", namespace="vigie", is_install=True)
            check(False, f"the chart renders a secret given in config: {config}")
        except helm.HelmError as e:
            check(expected in str(e), f"the chart refuses {expected} naming it: {e}")
    print("  typos and secrets in values refused")


# ---------------------------------------------------------------------------------------------
def exported_metrics() -> dict[str, str]:
    """Every metric name the Rust source registers, with its type (the recorder's macros)."""
    names: dict[str, str] = {}
    for path in ROOT.glob("**/src/**/*.rs"):
        if "target" in path.parts:
            continue
        for kind, name in re.findall(r'\b(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', path.read_text()):
            names[name] = kind
    return names


def metric_names_in(expr: str, exported: dict[str, str]) -> set[str]:
    """The vigie_* series an expression reads; a histogram's _bucket/_sum/_count map to it."""
    used = set()
    for token in re.findall(r"\bvigie_[a-z0-9_]+\b", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", token)
        used.add(base if base != token and exported.get(base) == "histogram" else token)
    return used


def metrics(production_docs: list[dict]) -> None:
    section("metric names of the dashboard and the alerts are ones Vigie exports")
    exported = exported_metrics()
    check(len(exported) > 10 and "vigie_login_total" in exported, f"the source scan finds Vigie's metrics: {sorted(exported)}")
    dashboard = json.loads((ROOT / "deploy/grafana/vigie.json").read_text())
    exprs = [("dashboard: " + p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = [d for d in production_docs if d["kind"] == "PrometheusRule"]
    check(len(rules) == 1, "the production example renders the PrometheusRule")
    for rule in rules:
        for group in rule["spec"]["groups"]:
            for r in group["rules"]:
                exprs.append(("alert: " + r["alert"], str(r["expr"])))
    used = set()
    for where, expr in exprs:
        names = metric_names_in(expr, exported)
        check(bool(names), f"{where}: reads a Vigie metric: {expr}")
        unknown = sorted(n for n in names if n not in exported)
        check(not unknown, f"{where}: {unknown} not exported by Vigie (gateway/, adapters/, policies/ src)")
        for n in names:
            if n in exported and exported[n] == "histogram":
                check(re.search(rf"\b{n}_bucket\b", expr) is not None or "histogram_quantile" not in expr, f"{where}: {n} read through its buckets")
        used |= names
    for needed in ["vigie_login_total", "vigie_policy_decisions_total", "vigie_upstream_state", "vigie_http_request_duration_seconds", "vigie_tokens_issued_total"]:
        check(needed in used, f"the dashboard shows {needed}")
    print(f"  {len(exprs)} expressions over {len(used)} of the {len(exported)} metrics Vigie exports")


# ---------------------------------------------------------------------------------------------
def main() -> int:
    print(f"helm SDK {helm.helm_sdk_version()}, kubernetes schemas {', '.join(KUBE_VERSIONS)}")
    dockerfile()
    vigie = Path(os.environ.get("VIGIE_BIN", ROOT / "target/debug/vigie"))
    rendered = {}
    with tempfile.TemporaryDirectory(prefix="vigie-deploy-") as tmp:
        cases = [("defaults", {})] + [(f.relative_to(ROOT).as_posix(), yaml.safe_load(f.read_text())) for f in EXAMPLES]
        # The other card login mode: the controller terminates TLS and passes the card in a header.
        production = dict(cases[[label for label, _ in cases].index("deploy/helm/examples/production.yaml")][1])
        production["ingress"] = {**production["ingress"], "cardLogin": "header", "controllerCidrs": ["10.42.0.0/16"],
                                 "clientCaSecret": "vigie/igc-sante-ca", "tlsSecretName": "sso-tls"}
        cases.append(("production.yaml with ingress.cardLogin=header", production))
        for label, values in cases:
            section(f"chart with {label}")
            docs = render(values, label)
            validate(docs, label)
            properties(docs, values, label)
            if vigie.is_file():
                check_config(docs, values, label, vigie, Path(tmp))
            else:
                check(False, f"no vigie binary at {vigie} (cargo build -p vigie-gateway, or set VIGIE_BIN) for check-config")
            rendered[label] = docs
    refusals()
    metrics(rendered["deploy/helm/examples/production.yaml"])
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
