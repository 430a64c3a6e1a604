"""How the project installs: extras per product, console scripts that exist, no sys.path edits, and the study app
and the analysis working where torch and Ray are not installed.

The last is checked here by making torch and ray unimportable in a subprocess (seconds); the real thing, a fresh
venv with only `.[study,analysis]` serving the demo in Chromium, is scripts/check_light_install.sh (minutes).
"""
import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SELF = PROJECT["name"]
HEAVY = ("torch", "torchvision", "ray")


def _requirements(extras: list[str]) -> set[str]:
    """Distribution names the base dependencies and these extras bring, following `usgan-toolkit[...]` references."""
    names, todo, seen = set(), list(extras), set()
    for req in PROJECT["dependencies"]:
        names.add(re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower())
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in PROJECT["optional-dependencies"][extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
            if name == SELF:
                todo += re.search(r"\[(.*)\]", req).group(1).split(",")
            else:
                names.add(name)
    return names


def test_study_and_analysis_extras_bring_no_torch_or_ray():
    light = _requirements(["study", "analysis"])
    assert {"streamlit", "sqlalchemy", "pillow", "pandas", "scipy", "statsmodels", "matplotlib"} <= light
    assert not light & set(HEAVY), light & set(HEAVY)
    assert {"torch", "torchvision", "ray"} <= _requirements(["train"])
    assert _requirements(["all"]) >= _requirements(["train", "eval", "study", "analysis", "dev"])


def test_console_scripts_name_functions_that_exist():
    assert {"usgan-train", "usgan-tune", "usgan-evaluate", "usgan-synthesize", "usgan-export", "usgan-ablation",
            "usgan-study-build", "usgan-preferences"} <= set(PROJECT["scripts"])
    for script, target in PROJECT["scripts"].items():
        module, func = target.split(":")
        tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
        assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, script


def test_no_module_edits_sys_path():
    edits = [f"{p.relative_to(REPO)}:{i}" for folder in ("usgan", "study_app", "analysis", "benchmarks", "tests",
                                                         "scripts", "cluster", "vote_format")
             for p in (REPO / folder).rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"sys\.path\s*(\.(insert|append)|\[|\s*[+]?=)", line) and p != Path(__file__)]
    assert not edits, edits


@pytest.mark.timeout(120)
def test_study_app_and_analysis_run_with_torch_and_ray_unimportable(tmp_path):
    for name in HEAVY:
        (tmp_path / "blocked" / name).mkdir(parents=True)
        (tmp_path / "blocked" / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed')\n")
    modules = sorted({f"study_app.{p.stem}" for p in (REPO / "study_app").glob("*.py")
                      if p.stem not in ("__init__", "main")} |
                     {f"analysis.{p.stem}" for p in (REPO / "analysis").glob("*.py") if p.stem != "__init__"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), str(REPO)])}
    code = ("import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
            "try:\n    import torch\nexcept ImportError:\n    print('torch not importable')\n")
    proc = subprocess.run([sys.executable, "-c", code, *modules], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=100)
    assert proc.returncode == 0 and "torch not importable" in proc.stdout, proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, "analysis/preferences.py", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr[-2000:]


def _one_error_line(proc, code, *fragments):
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout[-500:], err[-2000:])
    assert "Traceback" not in err + proc.stdout
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.mark.timeout(240)
def test_commands_of_other_extras_say_what_to_install_on_a_training_only_setup(tmp_path):
    # `setup.sh train` (the Quick start's first command alone) installs only the `train` extra: every command that
    # needs another one stops before any work with one line naming the package and the setup command.
    blocked = tmp_path / "blocked"
    for name in ("skimage", "onnx", "scipy", "statsmodels", "streamlit", "sqlalchemy"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(REPO)])}

    def run(*args):
        return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=90)

    out = tmp_path / "out"
    _one_error_line(run("-m", "usgan.evaluate", "--checkpoint", "demo", "--out", str(out)), 2,
                    "skimage is not installed", "'eval' extra", "bash scripts/setup.sh")
    _one_error_line(run("-m", "usgan.ablation", "--iters", "2", "--out", str(out)), 2, "skimage", "'eval' extra")
    _one_error_line(run("-m", "usgan.export", "--checkpoint", "demo", "--onnx", str(out / "g.onnx")), 2,
                    "onnx is not installed", "bash scripts/setup.sh")
    assert not out.exists()
    _one_error_line(run("analysis/preferences.py"), 1, "scipy, statsmodels", "'analysis' extra", "bash scripts/setup.sh")
    _one_error_line(run("-c", "from analysis.installed import preferences; preferences()"), 1, "scipy")
    _one_error_line(run("-c", "from study_app.console import serve; serve()"), 1, "streamlit, sqlalchemy",
                    "bash scripts/setup.sh")


def test_setup_names_its_parts_on_a_wrong_one():
    proc = subprocess.run(["bash", "scripts/setup.sh", "evaluate"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and not proc.stdout, (proc.returncode, proc.stdout)
    assert proc.stderr.startswith("[setup] error: unknown part 'evaluate'") and proc.stderr.count("\n") == 1, proc.stderr
    assert "bash scripts/setup.sh train" in proc.stderr
