"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, one local port.

The server binaries are looked up on PATH, then in Debian's /usr/lib/postgresql/*/bin.
Without them the tests skip, naming the package, unless RESHAPE_REQUIRE_POSTGRES is set
(.ci/run sets it): then the absence is a failure, so CI cannot pass by skipping.
PostgreSQL refuses to run as root; as root the cluster runs as the unprivileged user
``postgres`` (or ``nobody``) through ``runuser``, in a folder that user owns.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

REQUIRE = "RESHAPE_REQUIRE_POSTGRES"
USERS = ("postgres", "nobody")


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                    if p.parent.parent.name.isdigit() else 0)
    return debian[-1].parent if debian else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(folder: Path) -> list[str]:
    """The prefix that runs the server's tools as a non-root user (empty unless we are root)."""
    if os.geteuid() != 0:
        return []
    for name in USERS:
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        os.chown(folder, user.pw_uid, user.pw_gid)
        return ["runuser", "-u", name, "--"]
    pytest.fail(f"running as root and none of the users {', '.join(USERS)} exists to run PostgreSQL as")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://reshape@127.0.0.1:PORT/postgres`` on a fresh cluster, stopped and deleted afterwards."""
    binaries = server_binaries()
    if binaries is None:
        why = "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        if os.environ.get(REQUIRE):
            pytest.fail(f"{why} ({REQUIRE} is set: this machine must run the PostgreSQL tests)")
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="reshape-pg-"))
    data, port = folder / "data", _free_port()
    prefix = _as_user(folder)

    def tool(name: str, *args: str) -> None:
        subprocess.run([*prefix, str(binaries / name), *args], check=True, capture_output=True, timeout=60)

    try:
        tool("initdb", "-D", str(data), "-U", "reshape", "--auth=trust", "-E", "UTF8", "--no-sync")
        # fsync off: a test database need not survive a power cut, and the disk is shared.
        tool("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "start",
             "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off")
        try:  # initdb's own database "postgres" serves: no createdb (not every install ships it)
            yield f"postgresql://reshape@127.0.0.1:{port}/postgres"
        finally:
            tool("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not start a PostgreSQL cluster: {exc.stderr.decode(errors='replace').strip()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
