"""Two sweep workers share one study in a real PostgreSQL server (started here, on a unix
socket only), run concurrently, and the study ends with every trial distinct and recorded."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest

from tests.conftest import ROOT
from tests.test_sweep import sweep_command


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def postgres_url():
    bindir = server_binaries()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries missing on CI (scripts/test.sh installs them)")
        pytest.skip("no PostgreSQL server installed (scripts/test.sh installs it as root)")
    home = Path(tempfile.mkdtemp(prefix="pg-sweep-"))  # short path: the socket name has a length limit
    as_owner: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]

    def pg(*args: str) -> None:
        subprocess.run([*as_owner, *args], check=True, capture_output=True, timeout=120)

    port = "54329"
    pg(str(bindir / "initdb"), "-D", str(home / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
    pg(str(bindir / "pg_ctl"), "-D", str(home / "data"), "-l", str(home / "log"), "-w", "start",
       "-o", f"-p {port} -k {home} -c listen_addresses=''")
    try:
        pg(str(bindir / "createdb"), "-h", str(home), "-p", port, "-U", "postgres", "sweeps")
        yield f"postgresql+psycopg://postgres@/sweeps?host={home}&port={port}"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(home / "data"), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    # quoted: the URL holds '=' and '&', which Hydra's override grammar would otherwise parse
    command = [*sweep_command(tmp_path, 4), f"sweep.storage='{postgres_url}'", "sweep.study_name=shared"]
    workers = [subprocess.Popen([*command, f"hydra.run.dir={tmp_path / f'driver{i}'}"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=400)
        assert w.returncode == 0, err[-2000:]
    storage = optuna.storages.RDBStorage(postgres_url)
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    storage.engine.dispose()  # close pooled connections before the server goes away
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    # both workers stop once 4 trials finished; one may have started a 5th just before
    assert 4 <= len(complete) <= 5 and len(complete) == len(trials)
    assert len({t.number for t in complete}) == len(complete)
    assert len({t.user_attrs["worker"] for t in complete}) == 2, "both workers should have run trials"
    for t in complete:
        assert (Path(t.user_attrs["run_dir"]) / "metrics.json").is_file()
