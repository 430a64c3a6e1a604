"""study_app/README.md's deploy step, read as an operator would copy it: the project's extras, the admin secret in
a root-only EnvironmentFile, nginx's limit_req beside the proxy block, and commands that exist as written."""

import re
import subprocess
import sys
import tomllib

from study_app.settings import REPO_ROOT

README = (REPO_ROOT / "study_app" / "README.md").read_text()
DEPLOY = README[README.index("**2. Deploy**"):README.index("**3. Recruit.**")]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DEPLOY, re.S)


def test_the_install_uses_extras_the_project_declares():
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = re.findall(r'pip install -e "\.\[([a-z,]+)\]"', DEPLOY)
    assert installs and all(set(found.split(",")) <= set(extras) for found in installs)
    assert "requirements.txt" not in README


def test_the_admin_secret_lives_in_a_root_only_environment_file():
    shell = blocks("bash")[0]
    unit = shell[shell.index("[Unit]"):shell.index("UNIT\n", shell.index("[Unit]"))]
    assert "EnvironmentFile=/etc/usgan-study/study1.env" in unit
    assert "SECRET" not in unit.replace("EnvironmentFile", "")  # nothing secret in the world-readable unit
    assert "User=study" in unit and "USGAN_STUDY_BEHIND_PROXY=1" in unit
    writes = [line for line in shell.splitlines() if "study1.env" in line and "USGAN_STUDY_ADMIN_SECRET=" in line]
    assert len(writes) == 1 and "umask 077" in writes[0]  # created unreadable to anyone but root
    assert "install -d -m 700 /etc/usgan-study" in shell
    assert "<<'UNIT'" in shell  # quoted: the shell expands nothing into the unit


def test_nginx_limits_requests_beside_the_proxy_block_and_passes_the_address():
    nginx, = blocks("nginx")
    assert re.search(r"limit_req_zone \$binary_remote_addr zone=study:\S+ rate=\S+;", nginx)
    location = nginx[nginx.index("location / {"):]
    assert "limit_req zone=study" in location and "proxy_pass http://127.0.0.1:8501;" in location
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in location


def test_the_backup_commands_name_options_the_command_has():
    usage = subprocess.run([sys.executable, "-m", "study_app.backup", "--help"], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=60, env={"PYTHONPATH": str(REPO_ROOT), "PATH": ""}).stdout
    for line in (line for block in blocks("bash")[1:] for line in block.splitlines() if "study_app.backup" in line):
        for option in re.findall(r"(--[a-z]+)", line):
            assert option in usage, option
