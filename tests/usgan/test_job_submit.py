"""The user's main command, for real: `ray job submit` against a local two-node cluster started with `ray start`."""
import os
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
