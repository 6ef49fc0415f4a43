"""A real, throwaway PostgreSQL cluster on loopback for the task-index tests (installed by
scripts/test.sh: Debian's ``postgresql``, whose programs live in /usr/lib/postgresql/<ver>/bin).

PostgreSQL refuses to run as root: when the tests run as root, the cluster's directory is
given to the ``postgres`` system user (created by the Debian package) and the server programs
run as that user through ``runuser``. Clients connect over TCP with a password, so nothing
else needs that user. ``fsync`` is off: the data is thrown away with the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.redis_server import free_port

SUPERUSER = "postgres"
PASSWORD = "test-only-password"


def server_bin() -> Path:
    """The directory of ``initdb``/``pg_ctl``: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run `bash scripts/test.sh`")
    return Path(candidates[-1]).parent


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tg-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.running = False
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # postgres will not run as root: run it as `postgres`
            try:
                user = pwd.getpwnam(SUPERUSER)
            except KeyError as exc:
                raise RuntimeError("no `postgres` user to run PostgreSQL as") from exc
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", SUPERUSER, "--"]

    def url(
        self, database: str = "postgres", user: str = SUPERUSER, password: str = PASSWORD
    ) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        subprocess.run(
            [*self._as_user, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
        )

    def start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(PASSWORD)
        if self._as_user:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(password_file, user.pw_uid, user.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip
        self.running = True

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser (over TCP) and return its output."""
        psql = self.bin / "psql"
        done = subprocess.run(
            [str(psql if psql.exists() else "psql"), "-X", "-q", "-A", "-t", "-v",
             "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )  # fmt: skip
        return done.stdout

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
