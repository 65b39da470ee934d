"""Static checks of the packaging: Dockerfile, docker-compose.yml, .env.example, the Kubernetes
manifests, the External Secrets and Terraform examples.

Docker, Kubernetes, ESO and Terraform cannot run on the development machines or in CI, so this
parses every file and asserts the keys each must have. Needs only PyYAML
(compat-tests/requirements-packaging.txt); no server.

    cd compat-tests && pytest test_packaging.py
"""

import base64
import binascii
import os
import re
from pathlib import Path

import pytest

try:
    import yaml
except ImportError as err:  # fail loudly: a skipped packaging test would hide broken YAML
    raise ImportError("test_packaging.py needs PyYAML: pip install -r requirements-packaging.txt") from err

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "examples" / "kubernetes"
ESO = ROOT / "examples" / "external-secrets"
BUILD_COMMAND = "cargo build --release --locked --bin ragnos-vault"
PORT = 4000


# ----------------------------------------------------------------------------------------------
# helpers


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def docs_by_kind(directory):
    out = {}
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    assert files, f"no YAML in {directory}"
    for path in files:
        for doc in load_yaml_docs(path):
            assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
            for key in ("apiVersion", "kind", "metadata"):
                assert key in doc, f"{path.name}: document without {key}"
            assert doc["metadata"].get("name"), f"{path.name}: {doc['kind']} without metadata.name"
            out.setdefault(doc["kind"], []).append(doc)
    return out


def only(docs, kind):
    items = docs.get(kind, [])
    assert len(items) == 1, f"expected exactly one {kind}, found {len(items)}"
    return items[0]


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        logical.append(current)
        current = ""
    assert not current, "Dockerfile ends inside a line continuation"
    out = []
    for line in logical:
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), " ".join(args.split())))
    return out


def final_stage(instructions):
    starts = [i for i, (ins, _) in enumerate(instructions) if ins == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1]:]


def is_valid_master_key(value):
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


# ----------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_is_multi_stage_rust_builder_slim_runtime():
    ins = dockerfile_instructions()
    froms = [args for i, args in ins if i == "FROM"]
    assert len(froms) >= 2, "Dockerfile must be multi-stage"
    assert re.match(r"rust:\S+", froms[0]), f"builder stage should be an official rust image: {froms[0]}"
    assert froms[-1].split()[0].startswith("debian:") and "slim" in froms[-1], froms[-1]


def test_dockerfile_build_command_is_the_ci_one():
    runs = [args for i, args in dockerfile_instructions() if i == "RUN"]
    builds = [r for r in runs if "cargo build" in r]
    assert len(builds) == 1, f"expected one cargo build step, found {builds}"
    assert BUILD_COMMAND in builds[0]
    # nothing else slipped into the command (extra features, profiles, targets)
    cmd = re.search(r"cargo build[^&;|]*", builds[0]).group(0).strip()
    assert cmd == BUILD_COMMAND, cmd


def test_dockerfile_runtime_runs_non_root_with_healthcheck():
    stage = final_stage(dockerfile_instructions())
    users = [args for i, args in stage if i == "USER"]
    assert users, "final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"final USER is root: {users[-1]}"

    health = [args for i, args in stage if i == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0], health
    assert f":{PORT}/" in health[0], health

    exposed = " ".join(args for i, args in stage if i == "EXPOSE").split()
    assert str(PORT) in [p.split("/")[0] for p in exposed], exposed

    env = " ".join(args for i, args in stage if i == "ENV")
    assert f"RAGNOS_LISTEN=0.0.0.0:{PORT}" in env
    assert "RAGNOS_DATA_DIR=/data" in env
    volumes = " ".join(args for i, args in stage if i == "VOLUME")
    assert "/data" in volumes

    entrypoint = [args for i, args in stage if i == "ENTRYPOINT"]
    cmd = [args for i, args in stage if i == "CMD"]
    assert entrypoint and yaml.safe_load(entrypoint[-1]) == ["ragnos-vault"], entrypoint
    assert cmd and yaml.safe_load(cmd[-1]) == ["server"], cmd


def test_dockerfile_uid_matches_kubernetes_security_context():
    stage = final_stage(dockerfile_instructions())
    uid = [args for i, args in stage if i == "USER"][-1].split(":")[0]
    dep = only(docs_by_kind(K8S), "Deployment")
    pod_sc = dep["spec"]["template"]["spec"].get("securityContext", {})
    assert str(pod_sc.get("runAsUser")) == uid, (pod_sc, uid)


def test_dockerignore_keeps_context_clean():
    entries = {
        line.strip().lstrip("/").replace("**/", "")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in ("target", "data", "node_modules", ".git"):
        assert needed in entries, f".dockerignore lacks {needed}"


# ----------------------------------------------------------------------------------------------
# docker-compose.yml and .env.example


@pytest.fixture(scope="module")
def compose():
    docs = load_yaml_docs(ROOT / "docker-compose.yml")
    assert len(docs) == 1
    return docs[0]


def as_env_dict(environment):
    if environment is None:
        return {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return dict(environment)


def test_compose_has_api_postgres_redis(compose):
    services = compose["services"]
    assert {"api", "postgres", "redis"} <= set(services), list(services)
    assert re.fullmatch(r"postgres:15(\.\d+)*(-\S+)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\.\d+)*(-\S+)?", services["redis"]["image"])


def test_compose_api_service(compose):
    api = compose["services"]["api"]
    build = api["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert context in (".", "./"), build

    env_file = api["env_file"]
    env_files = [env_file] if isinstance(env_file, (str, dict)) else env_file
    paths = [e if isinstance(e, str) else e["path"] for e in env_files]
    assert ".env" in [os.path.normpath(p) for p in paths], paths

    env = as_env_dict(api.get("environment"))
    assert env["RAGNOS_LISTEN"] == f"0.0.0.0:{PORT}"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert "VAULT_MASTER_KEY" not in env, "the master key comes from the env file, not the compose file"

    ports = [str(p) for p in api["ports"]]
    assert any(p.endswith(f"{PORT}:{PORT}") for p in ports), ports

    deps = api["depends_on"]
    for svc in ("postgres", "redis"):
        assert deps[svc]["condition"] == "service_healthy", deps

    test = api["healthcheck"]["test"]
    test = " ".join(test) if isinstance(test, list) else test
    assert re.search(rf"127\.0\.0\.1:{PORT}/(healthz|readyz)", test), test


def test_compose_dependencies_have_healthchecks(compose):
    services = compose["services"]
    pg = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in (" ".join(pg) if isinstance(pg, list) else pg)
    rd = services["redis"]["healthcheck"]["test"]
    assert "redis-cli" in (" ".join(rd) if isinstance(rd, list) else rd)
    assert services["postgres"].get("volumes"), "postgres data must live in a volume"


def test_env_example_documents_every_variable(compose):
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    for var in ("VAULT_MASTER_KEY", "RAGNOS_ROOT_ACCESS_KEY_ID", "RAGNOS_ROOT_SECRET_ACCESS_KEY",
                "RAGNOS_ROOT_ACCOUNT_ID"):
        assert var in defined, f".env.example lacks {var}"
    assert "openssl rand -base64 32" in text
    # every ${VAR} the compose file interpolates is documented
    raw = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for var in set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", raw)):
        assert var in defined, f"docker-compose.yml uses ${{{var}}}, which .env.example does not document"
    # no real value ships in the example
    for line in text.splitlines():
        if line.startswith(("VAULT_MASTER_KEY=", "RAGNOS_ROOT_SECRET_ACCESS_KEY=", "POSTGRES_PASSWORD=")):
            assert line.split("=", 1)[1].strip() == "", f".env.example must not carry a value: {line}"


# ----------------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def k8s():
    return docs_by_kind(K8S)


def container_of(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def resolve_port(container, port):
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"named port {port!r} not declared by the container"
    return named[port]


def test_k8s_has_every_manifest(k8s):
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "Secret", "ConfigMap"):
        only(k8s, kind)
    assert (K8S / "README.md").is_file()


def test_k8s_deployment_probes(k8s):
    dep = only(k8s, "Deployment")
    c = container_of(dep)
    ports = [p["containerPort"] for p in c["ports"]]
    assert PORT in ports, ports
    ready = c["readinessProbe"]["httpGet"]
    live = c["livenessProbe"]["httpGet"]
    assert ready["path"] == "/readyz", ready
    assert live["path"] == "/healthz", live
    assert resolve_port(c, ready["port"]) == PORT
    assert resolve_port(c, live["port"]) == PORT


def test_k8s_deployment_selector_and_resources(k8s):
    dep = only(k8s, "Deployment")
    assert dep["apiVersion"] == "apps/v1"
    selector = dep["spec"]["selector"]["matchLabels"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), (selector, labels)
    res = container_of(dep)["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"], res
    assert res["limits"]["memory"], res


def test_k8s_deployment_security_context(k8s):
    dep = only(k8s, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = container_of(dep)
    pod_sc = pod.get("securityContext", {})
    c_sc = c.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True or c_sc.get("runAsNonRoot") is True
    uid = c_sc.get("runAsUser", pod_sc.get("runAsUser"))
    assert isinstance(uid, int) and uid != 0, uid
    assert c_sc.get("readOnlyRootFilesystem") is True
    assert c_sc.get("allowPrivilegeEscalation") is False
    assert "ALL" in c_sc.get("capabilities", {}).get("drop", [])

    # a read-only root filesystem needs a writable /data: an emptyDir
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert "/data" in mounts, mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/data"]], volumes[mounts["/data"]]


def test_k8s_deployment_env_from_configmap_and_secret(k8s):
    dep = only(k8s, "Deployment")
    env_from = container_of(dep)["envFrom"]
    cm_refs = [e["configMapRef"]["name"] for e in env_from if "configMapRef" in e]
    secret_refs = [e["secretRef"]["name"] for e in env_from if "secretRef" in e]
    assert cm_refs == [only(k8s, "ConfigMap")["metadata"]["name"]], cm_refs
    assert secret_refs == [only(k8s, "Secret")["metadata"]["name"]], secret_refs


def test_k8s_configmap(k8s):
    data = only(k8s, "ConfigMap")["data"]
    assert data["RAGNOS_LISTEN"] == f"0.0.0.0:{PORT}"
    assert data["DATABASE_URL"].startswith("postgres://")
    assert data["REDIS_URL"].startswith("redis://")
    assert "VAULT_MASTER_KEY" not in data


def test_k8s_secret_holds_fake_master_key(k8s):
    secret = only(k8s, "Secret")
    data = dict(secret.get("stringData") or {})
    for k, v in (secret.get("data") or {}).items():
        data[k] = base64.b64decode(v).decode()
    for key in ("VAULT_MASTER_KEY", "RAGNOS_ROOT_ACCESS_KEY_ID", "RAGNOS_ROOT_SECRET_ACCESS_KEY"):
        assert key in data, f"Secret lacks {key}"
    # the placeholder must be unusable, so nobody deploys it by accident
    assert not is_valid_master_key(data["VAULT_MASTER_KEY"]), "placeholder master key is a usable key"
    assert "FAKE" in data["VAULT_MASTER_KEY"].upper() or "CHANGE" in data["VAULT_MASTER_KEY"].upper()


def test_k8s_service(k8s):
    svc = only(k8s, "Service")
    dep = only(k8s, "Deployment")
    ports = svc["spec"]["ports"]
    assert any(p["port"] == PORT for p in ports), ports
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    c = container_of(dep)
    for p in ports:
        assert resolve_port(c, p.get("targetPort", p["port"])) == PORT


def test_k8s_hpa_targets_the_deployment(k8s):
    hpa = only(k8s, "HorizontalPodAutoscaler")
    dep = only(k8s, "Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"]
    assert ref.get("apiVersion", "apps/v1") == "apps/v1"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization", hpa["spec"]["metrics"]


# ----------------------------------------------------------------------------------------------
# External Secrets Operator


@pytest.fixture(scope="module")
def eso():
    return docs_by_kind(ESO)


def test_eso_secretstore_uses_aws_secretsmanager(eso):
    store = only(eso, "SecretStore")
    assert store["apiVersion"].startswith("external-secrets.io/")
    aws = store["spec"]["provider"]["aws"]
    assert aws["service"] == "SecretsManager"
    assert aws["region"]
    ref = aws["auth"]["secretRef"]
    secrets = {s["metadata"]["name"]: s for s in eso.get("Secret", [])}
    for selector in ("accessKeyIDSecretRef", "secretAccessKeySecretRef"):
        name, key = ref[selector]["name"], ref[selector]["key"]
        if name in secrets:  # the example ships its (fake) credentials Secret
            assert key in (secrets[name].get("stringData") or secrets[name].get("data")), (name, key)
    # the endpoint is the controller's AWS_SECRETSMANAGER_ENDPOINT; the docs must say so
    assert "AWS_SECRETSMANAGER_ENDPOINT" in (ESO / "secretstore.yaml").read_text(encoding="utf-8")
    assert "AWS_SECRETSMANAGER_ENDPOINT" in (ESO / "README.md").read_text(encoding="utf-8")


def test_eso_externalsecrets_reference_the_store(eso):
    store = only(eso, "SecretStore")["metadata"]["name"]
    externals = eso.get("ExternalSecret", [])
    assert externals
    for es in externals:
        ref = es["spec"]["secretStoreRef"]
        assert ref["name"] == store and ref.get("kind", "SecretStore") == "SecretStore"
        assert es["spec"].get("data") or es["spec"].get("dataFrom")


# ----------------------------------------------------------------------------------------------
# Terraform and the client examples


def test_terraform_example_points_provider_at_the_vault():
    tf = (ROOT / "examples" / "terraform" / "main.tf").read_text(encoding="utf-8")
    assert re.search(r"endpoints\s*\{\s*secretsmanager\s*=\s*var\.endpoint\s*\}", tf)
    for flag in ("skip_credentials_validation", "skip_requesting_account_id",
                 "skip_metadata_api_check", "skip_region_validation"):
        assert re.search(rf"{flag}\s*=\s*true", tf), flag
    assert re.search(r"access_key\s*=\s*var\.", tf) and re.search(r"secret_key\s*=\s*var\.", tf)
    assert 'resource "aws_secretsmanager_secret" ' in tf
    assert 'resource "aws_secretsmanager_secret_version" ' in tf
    assert 'data "aws_secretsmanager_secret_version" ' in tf
    assert tf.count("{") == tf.count("}"), "unbalanced braces in main.tf"


def test_run_all_covers_every_runnable_example():
    script = (ROOT / "examples" / "run-all.sh").read_text(encoding="utf-8")
    for example in ("python/boto3_example.py", "python/caching_example.py", "node/example.mjs",
                    "cli/example.sh"):
        assert (ROOT / "examples" / example).is_file(), example
        assert example in script, f"run-all.sh does not run {example}"
    lock = ROOT / "examples" / "node" / "package-lock.json"
    assert lock.is_file(), "examples/node/package-lock.json is needed for npm ci"
    reqs = (ROOT / "examples" / "python" / "requirements.txt").read_text(encoding="utf-8")
    for package in ("boto3", "aws-secretsmanager-caching", "awscli"):
        assert re.search(rf"^{re.escape(package)}\b", reqs, flags=re.M), f"examples/python/requirements.txt lacks {package}"
