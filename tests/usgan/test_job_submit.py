"""The user's main command, for real: `ray job submit` against clusters started with `ray start`: the README's own
lines on a one-node cluster, and a local two-node cluster."""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(args, env, timeout=180):
    return subprocess.run([str(BIN / "ray"), *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def two_node_cluster():
    # Token authentication, as Ray >= 2.59 wants for local clusters: every process gets the same token
    # through the environment, so no file in ~/.ray is read or written.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    gcs, dash = _free_port(), _free_port()
    # One temp dir per node; Unix socket paths are capped at 107 bytes, so they are short ones under /tmp.
    head_tmp, node_tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp"), tempfile.mkdtemp(prefix="rn", dir="/tmp")
    try:
        r = _ray(["start", "--head", f"--port={gcs}", "--num-cpus=1", "--include-dashboard=true",
                  f"--dashboard-port={dash}", f"--temp-dir={head_tmp}", "--disable-usage-stats"], env)
        assert r.returncode == 0, r.stdout + r.stderr
        r = _ray(["start", f"--address=127.0.0.1:{gcs}", "--num-cpus=1", f"--temp-dir={node_tmp}",
                  "--disable-usage-stats"], env)
        assert r.returncode == 0, r.stdout + r.stderr
        yield f"http://127.0.0.1:{dash}", env
    finally:
        _ray(["stop", "--force"], env)
        shutil.rmtree(head_tmp, ignore_errors=True)
        shutil.rmtree(node_tmp, ignore_errors=True)


def test_ray_job_submit_trains_across_two_nodes(two_node_cluster, tmp_path):
    dashboard, env = two_node_cluster
    storage = tmp_path / "runs"
    cmd = ["job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--",
           "python", "-m", "usgan.train", "--preset", "tiny", "--storage", str(storage), "--name", "job",
           "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    out = _ray(cmd, env, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "2 worker(s), CPU" in log                       # one DDP worker on each node
    assert "succeeded" in log.lower()
    assert list(storage.glob("job/checkpoint_*/engine.pt"))
    assert list(storage.glob("job/checkpoint_*/6-G.ckpt"))


def _readme_ray_block() -> list[str]:
    """The README's Training lines from `export RAY_AUTH_MODE` to `ray stop`, comments dropped."""
    section = (REPO / "README.md").read_text().split("## Training", 1)[1]
    m = re.search(r"^(export RAY_AUTH_MODE.*?^ray stop\b[^\n]*)$", section, re.M | re.S)
    assert m, "README's Training section has no block from `export RAY_AUTH_MODE` to `ray stop`"
    return [re.sub(r"\s+#.*", "", line) for line in m.group(1).splitlines()]


def _isolated(cmd: list[str]) -> list[str]:
    # Own PID namespace: `ray stop` stops every Ray process it can see, and must see only this cluster's.
    # Own network namespace: `ray start --head` takes the default ports 6379 and 8265 as the README types it.
    return ["unshare", "--pid", "--net", "--fork", "--mount-proc", *cmd]


def test_readme_ray_start_job_submit_stop_as_written(tmp_path):
    lines = _readme_ray_block()
    assert lines[-1] == "ray stop" and any(line.startswith("ray start --head") for line in lines)
    [submit] = [i for i, line in enumerate(lines) if line.startswith("ray job submit ")]
    assert lines[submit].endswith("-- python -m usgan.train")
    lines[submit] += " --preset tiny"
    if subprocess.run(_isolated(["ip", "link", "set", "lo", "up"]), capture_output=True).returncode != 0:
        pytest.skip("needs unshare (root) and iproute2 to give the cluster its own PIDs and ports")
    script = tmp_path / "readme.sh"
    # A fresh network namespace starts with its loopback down.
    script.write_text("set -euo pipefail\nip link set lo up\n" + "\n".join(lines) + "\n")
    home = tmp_path / "home"                 # a fresh machine: no ~/.ray/auth_token, no runs, no data cache
    home.mkdir()
    ray_tmp = tempfile.mkdtemp(prefix="rr", dir="/tmp")     # Unix socket paths are capped at 107 bytes
    # `source .venv/bin/activate`, as the README asks before `ray start`: the job's `python` is this one.
    env = {"HOME": str(home), "PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "VIRTUAL_ENV": str(BIN.parent), "RAY_TMPDIR": ray_tmp, "LANG": "C.UTF-8"}
    try:
        out = subprocess.run(_isolated(["bash", str(script)]), cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=600)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "succeeded" in log.lower()
    assert list(home.glob("usgan-runs/usgan-tiny/checkpoint_*/6-G.ckpt")), log[-3000:]
