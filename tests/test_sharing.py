"""Sharing a study through a DVC remote, and experiments (``dvc exp``), with the real CLI.

A colleague clones the git repo, pulls the cache from the lab's remote and gets every output
bit for bit without running anything.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from e2e import dvc, git, stages_run

pytestmark = pytest.mark.e2e

# Outputs compared byte for byte between the study and a colleague's clone.
SAMPLES = ("models/gan/0.pt", "models/scorer/0.pt", "data/pool/0/images.npy", "data/scores/0/scores.csv",
           "data/selections/random-1-0.npy", "models/classifiers/none-0-0.pt",
           "plots/confusion/none-0-0/digits.json")


def share(study: Path, url: str, name: str = "lab") -> None:
    dvc(study, "remote", "add", "--default", name, url)
    git(study, "commit", "-q", "-am", f"share through remote {name}")
    dvc(study, "push", "--run-cache")


def fresh_clone(study: Path, dest: Path) -> Path:
    git(study.parent, "clone", "-q", str(study), str(dest))
    return dest


def assert_same_outputs(a: Path, b: Path) -> None:
    for rel in SAMPLES:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_push_then_pull_in_a_fresh_clone(study_copy, tmp_path):
    share(study_copy, str(tmp_path / "remote"))
    clone = fresh_clone(study_copy, tmp_path / "colleague")
    assert not (clone / "models/gan/0.pt").exists()
    dvc(clone, "pull")
    assert "up to date" in dvc(clone, "status").stdout
    assert stages_run(dvc(clone, "repro")) == set()
    assert_same_outputs(study_copy, clone)


def test_repro_pull_restores_instead_of_running(study_copy, tmp_path):
    share(study_copy, str(tmp_path / "remote"))
    clone = fresh_clone(study_copy, tmp_path / "colleague")
    assert stages_run(dvc(clone, "repro", "--pull")) == set()
    assert_same_outputs(study_copy, clone)


def test_experiments_run_queue_and_show(study_copy):
    """`dvc exp run -S`, `--queue` + `dvc queue start`, and `dvc exp show` with the headline."""
    dvc(study_copy, "exp", "run", "-n", "level90", "-S", "report.confidence_level=0.9")
    dvc(study_copy, "exp", "run", "--queue", "-n", "level80", "-S", "report.confidence_level=0.8")
    dvc(study_copy, "queue", "start")
    deadline = time.monotonic() + 300
    while True:
        status = dvc(study_copy, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert "Success" in status, status + dvc(study_copy, "queue", "logs", "level80",
                                             check=False).stdout
    shown = json.loads(dvc(study_copy, "exp", "show", "--json").stdout)
    levels = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                headline = data["metrics"]["metrics/headline.json"]["data"]
                levels[rev["name"]] = headline["confidence_level"]
                assert "baseline" in headline
    assert levels == {"level90": 0.9, "level80": 0.8}


# ------------------------------------------------------------------------------------------
# An SSH remote on 127.0.0.1, served by a real sshd
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A throwaway sshd on 127.0.0.1 that accepts one key; skipped where none can be started."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    keygen = shutil.which("ssh-keygen")
    if not Path(sshd_bin).is_file() or keygen is None:
        pytest.skip("OpenSSH server not installed (Debian: openssh-server)")
    d = tmp_path / "ssh"
    d.mkdir()
    for name in ("host", "client"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nPubkeyAuthentication yes\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            pytest.skip(f"sshd could not start: {proc.stderr.read().strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("sshd did not accept connections within 10 s")
            time.sleep(0.1)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    host_key = (d / "host.pub").read_text().split()[:2]
    (home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    yield {"port": port, "user": getpass.getuser(), "key": d / "client", "home": home}
    proc.terminate()
    proc.wait(timeout=10)


def test_ssh_remote_round_trip(study_copy, tmp_path, sshd, monkeypatch):
    pytest.importorskip("dvc_ssh", reason="dvc-ssh not installed (pip install dvc-ssh)")
    monkeypatch.setenv("HOME", str(sshd["home"]))  # its known_hosts pins the test server's key
    url = f"ssh://{sshd['user']}@127.0.0.1:{sshd['port']}{tmp_path / 'remote'}"
    dvc(study_copy, "remote", "add", "--default", "lab", url)
    git(study_copy, "commit", "-q", "-am", "share through ssh")
    dvc(study_copy, "remote", "modify", "--local", "lab", "keyfile", str(sshd["key"]))
    dvc(study_copy, "push", "--run-cache")

    clone = fresh_clone(study_copy, tmp_path / "colleague")
    dvc(clone, "remote", "modify", "--local", "lab", "keyfile", str(sshd["key"]))
    dvc(clone, "pull")
    assert stages_run(dvc(clone, "repro")) == set()
    assert_same_outputs(study_copy, clone)
