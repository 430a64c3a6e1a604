"""cluster/: the launcher YAML, the RayJob manifest, the two-node script and the README agree with the real CLI.

Parses every YAML, checks the keys each tool needs, and runs every `python -m usgan.train ...` command found in
these files through usgan.train's own parser (no Ray, no network, well under a second).
"""
import ast
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from usgan.config import PRESETS, config_from_cli, validate
from usgan.train import build_parser

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHER = CLUSTER / "aws-gpu.yaml"
RAYJOB = CLUSTER / "kuberay-rayjob.yaml"
SCRIPT = CLUSTER / "local-two-node.sh"
README = CLUSTER / "README.md"
ENTRY = "python -m usgan.train"


def _data_kinds() -> tuple:
    """usgan.data.sources.KINDS, read from the source: importing usgan.data would import torch (seconds)."""
    tree = ast.parse((REPO / "usgan" / "data" / "sources.py").read_text())
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(getattr(t, "id", None) == "KINDS" for t in targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("usgan/data/sources.py defines no KINDS")


def _ray_pin() -> str:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = [re.fullmatch(r"ray\[[^\]]*\]==(\S+)", d) for d in extras["train"]]
    assert any(pins), "pyproject.toml's train extra pins no ray version"
    return next(m.group(1) for m in pins if m)


def _strings(node):
    """Every string value in a parsed YAML tree."""
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def _logical_lines(text: str):
    """Lines with shell continuations (backslash-newline) joined."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def _commands_in(line: str):
    """The argument list after each `python -m usgan.train` in one line, up to where the shell command ends."""
    out = []
    for m in re.finditer(re.escape(ENTRY) + r"(?![\w.])", line):
        rest = line[m.end():]
        rest = re.split(r"`|&&|\|\||[|;)<>]|\s#", rest)[0]
        rest = rest.replace('"$@"', "").replace("$@", "")
        rest = re.sub(r"\$\{?\w+\}?", "1", rest)          # $VARS -> a placeholder every flag type accepts
        try:
            argv = shlex.split(rest)
        except ValueError:                                # the command sat inside a quoted string
            argv = shlex.split(re.split(r"['\"]", rest)[0])
        out.append(argv)
    return out


def _commands(path: Path):
    text = path.read_text()
    lines = []
    if path.suffix in (".yaml", ".yml"):
        for doc in yaml.safe_load_all(text):
            lines += [" ".join(s.split()) for s in _strings(doc)]
        comments = "\n".join(ln.lstrip()[1:] for ln in text.splitlines() if ln.lstrip().startswith("#"))
        lines += _logical_lines(comments)
    elif path.suffix == ".sh":
        lines = [ln for ln in _logical_lines(text) if not ln.lstrip().startswith("#")]
    else:
        lines = _logical_lines(text)
    return [argv for ln in lines for argv in _commands_in(ln)]


def _options(parser):
    return {s for a in parser._actions for s in a.option_strings}


ALL_FILES = [LAUNCHER, RAYJOB, SCRIPT, README]


def test_files_exist():
    for p in ALL_FILES:
        assert p.is_file(), p
    assert SCRIPT.stat().st_mode & 0o111, "local-two-node.sh should be executable"


@pytest.mark.parametrize("path", [LAUNCHER, RAYJOB], ids=lambda p: p.name)
def test_yaml_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


def test_launcher_config():
    cfg = yaml.safe_load(LAUNCHER.read_text())
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type"):
        assert key in cfg, key
    assert cfg["provider"]["type"] in ("aws", "gcp", "azure")
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    workers = [t for name, t in types.items() if name != cfg["head_node_type"]]
    assert workers, "no worker node type"
    gpu_families = ("g4dn", "g5", "g6", "p3", "p4d", "p4de", "p5")
    assert any(t["node_config"]["InstanceType"].split(".")[0] in gpu_families for t in workers), \
        "no GPU worker instance type"
    assert all("max_workers" in t for t in workers)
    # The Docker image matches the Ray version the project pins (Ray refuses mixed versions).
    image = cfg["docker"]["image"]
    assert image.startswith("rayproject/ray") and f":{_ray_pin()}" in image and "gpu" in image, image
    setup = " ".join(cfg["setup_commands"])
    assert re.search(r"pip install [^\n]*usgan-toolkit\[train,eval\]", setup)
    assert re.search(r"--no-deps[^\n]*face_recognition", setup)
    # Token auth on every node.
    starts = " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    assert starts.count("RAY_AUTH_MODE=token") == 2


def test_launcher_config_matches_rays_schema():
    """Validate against the schema `ray up` itself uses, where Ray is installed (no import of ray)."""
    jsonschema = pytest.importorskip("jsonschema")
    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ray not installed")
    schema = Path(list(spec.submodule_search_locations)[0]) / "autoscaler" / "ray-schema.json"
    if not schema.is_file():
        pytest.skip("ray's autoscaler schema not found")
    validator = jsonschema.Draft7Validator(json.loads(schema.read_text()))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(LAUNCHER.read_text()))]
    assert errors == [], errors


def _rayjob():
    docs = [d for d in yaml.safe_load_all(RAYJOB.read_text()) if d]
    jobs = [d for d in docs if d.get("kind") == "RayJob"]
    assert len(jobs) == 1
    return jobs[0], docs


def test_rayjob_manifest():
    job, docs = _rayjob()
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    assert spec["entrypoint"].split()[:3] == ENTRY.split()
    assert spec["shutdownAfterJobFinishes"] is True
    rc = spec["rayClusterSpec"]
    assert rc["rayVersion"] == _ray_pin()
    head = rc["headGroupSpec"]["template"]["spec"]["containers"][0]
    groups = rc["workerGroupSpecs"]
    assert groups and all("groupName" in g for g in groups)
    worker = groups[0]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" in worker["resources"]["limits"]
    # Token auth through a Secret, on every container that talks to Ray, submitter included.
    assert rc.get("authOptions", {}).get("mode") == "token"
    submitter = spec["submitterPodTemplate"]["spec"]["containers"][0]
    for c in (head, worker, submitter):
        env = {e["name"]: e for e in c.get("env", [])}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == rc["authOptions"]["secretName"]
    # --storage is a volume every pod mounts, backed by a ReadWriteMany claim.
    args = build_parser().parse_args(shlex.split(spec["entrypoint"])[3:])
    claims = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    for pod in (rc["headGroupSpec"]["template"]["spec"], groups[0]["template"]["spec"]):
        c = pod["containers"][0]
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == args.storage)
        vol = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        claim = claims[vol["persistentVolumeClaim"]["claimName"]]
        assert "ReadWriteMany" in claim["spec"]["accessModes"]
    # Dataset paths are mounted on the head (the driver reads them there).
    head_mounts = [m["mountPath"] for m in head["volumeMounts"]]
    for src in args.data or []:
        path = src.partition(":")[2]
        assert any(path.startswith(m.rstrip("/") + "/") for m in head_mounts), path


def test_script_uses_token_auth_and_separate_temp_dirs():
    text = SCRIPT.read_text()
    assert "RAY_AUTH_MODE=token" in text and "RAY_AUTH_TOKEN" in text
    starts = [ln for ln in _logical_lines(text) if re.match(r"\s*ray start", ln)]
    assert len(starts) == 2
    temp_dirs = [re.search(r"--temp-dir=(\S+)", ln).group(1) for ln in starts]
    assert len(set(temp_dirs)) == 2
    assert re.search(r"ray job submit .*--working-dir \.\s+--\s+" + re.escape(ENTRY), " ".join(_logical_lines(text)))


@pytest.mark.parametrize("path,minimum", [(RAYJOB, 1), (SCRIPT, 1), (README, 5)], ids=lambda x: getattr(x, "name", x))
def test_commands_are_found(path, minimum):
    assert len(_commands(path)) >= minimum


def test_every_train_command_parses_with_the_real_cli():
    parser = build_parser()
    options = _options(parser)
    kinds = _data_kinds()
    checked = 0
    for path in ALL_FILES:
        for argv in _commands(path):
            where = f"{path.name}: {ENTRY} {' '.join(argv)}"
            for tok in argv:
                if tok.startswith("--"):
                    # argparse accepts unambiguous prefixes (--iter); the files must spell flags out.
                    assert tok.split("=", 1)[0] in options, f"unknown flag {tok} in {where}"
            try:
                a = parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"the CLI rejects {where}")
            if a.preset is not None:
                assert a.preset in PRESETS, f"unknown preset {a.preset!r} in {where}"
            for src in a.data or []:
                kind = src.partition(":")[0].strip().lower()
                assert kind in kinds, f"unknown data kind {kind!r} in {where}"
            if a.config is None:
                validate(config_from_cli(a))    # --set keys and values, and the resolved settings, are valid
            checked += 1
    assert checked >= 8
