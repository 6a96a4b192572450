"""Running a node test server (a script in a folder with a pinned ``package.json``) as a
subprocess, shared by :mod:`tests.support.oidc_provider` and :mod:`tests.support.saml_idp`.

A :class:`NodeServer` describes one such folder. :meth:`NodeServer.ensure_node_modules` runs
``npm ci`` there unless the pinned versions are installed; :meth:`NodeServer.run` starts
``node <script>`` with its JSON configuration in an environment variable, drains its stdout and
stderr in threads (keeping the last :data:`STDERR_KEEP` lines of stderr), waits (at most
``startup_timeout`` seconds) for the one JSON line the script prints on stdout when it is
listening, and stops the process when the block ends: SIGTERM, then SIGKILL if it has not exited
within :data:`STOP_TIMEOUT` seconds (:func:`stop_process`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 20.0
NPM_CI_TIMEOUT = 300.0
STOP_TIMEOUT = 5.0
STDERR_KEEP = 200  # lines of a server's stderr kept for error messages


@dataclass(frozen=True)
class NodeRun:
    """A started node server, as :meth:`NodeServer.run` yields it."""

    process: subprocess.Popen[str]
    #: The last :data:`STDERR_KEEP` lines of its stderr, appended to while it runs.
    stderr: list[str]
    #: The JSON value of the line it announced itself with.
    announced: Any


@dataclass(frozen=True)
class NodeServer:
    """A node test server: ``script`` in ``directory``, whose ``package.json`` pins its packages.

    ``name`` goes into error messages ("the test <name> ..."). ``packages`` are the dependencies
    whose installed versions must match the pins (None: all of ``package.json``'s
    ``dependencies``). ``config_variable`` is the environment variable the script reads its JSON
    configuration from.
    """

    directory: Path
    script: Path
    name: str
    config_variable: str
    packages: tuple[str, ...] | None = None
    _npm_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def executable(self, program: str) -> str:
        """The path of ``program`` (node, npm) on PATH; RuntimeError if it is not there."""
        path = shutil.which(program)
        if path is None:
            raise RuntimeError(
                f"{program} is not on PATH; the {self.name} tests need node 20+ and npm"
            )
        return path

    def pinned_versions(self) -> dict[str, str]:
        """The versions ``package.json`` pins, by package."""
        package = json.loads((self.directory / "package.json").read_text(encoding="utf-8"))
        dependencies = package["dependencies"]
        names = dependencies if self.packages is None else self.packages
        return {name: str(dependencies[name]) for name in names}

    def installed_versions(self) -> dict[str, str | None]:
        """The versions in ``node_modules`` (None: not installed or unreadable), by package."""
        installed: dict[str, str | None] = {}
        names = self.pinned_versions() if self.packages is None else self.packages
        for name in names:
            path = self.directory / "node_modules" / name / "package.json"
            try:
                installed[name] = str(json.loads(path.read_text(encoding="utf-8"))["version"])
            except (OSError, ValueError, KeyError):
                installed[name] = None
        return installed

    def ensure_node_modules(self) -> None:
        """Install the pinned packages with ``npm ci`` unless those versions are installed
        (one install at a time across threads and processes: pytest-xdist's workers)."""
        if self.installed_versions() == self.pinned_versions():
            return
        with self._npm_lock, self._install_lock():
            if self.installed_versions() == self.pinned_versions():
                return
            command = [
                self.executable("npm"),
                "ci",
                "--prefix",
                str(self.directory),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
                check=False,
            )
            if result.returncode != 0 or self.installed_versions() != self.pinned_versions():
                raise RuntimeError(
                    f"npm ci for the test {self.name} failed (exit {result.returncode}):\n"
                    f"{result.stdout}\n{result.stderr}"
                )

    @contextmanager
    def _install_lock(self) -> Iterator[None]:
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"broker-tests-npm-{digest}.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def run(
        self,
        config: dict[str, Any],
        *,
        announces: str,
        required_key: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> Iterator[NodeRun]:
        """Run ``node <script>`` with ``config`` (as JSON in :attr:`config_variable`) for the
        duration of the block, once it has printed its announcement: a JSON line on stdout (a
        JSON object with ``required_key``, if given). ``announces`` completes "did not announce
        ... within N s" in the timeout's error. Does not install anything: call
        :meth:`ensure_node_modules` first."""
        env = dict(os.environ)
        env[self.config_variable] = json.dumps(config)
        process = subprocess.Popen(
            [self.executable("node"), str(self.script)],
            cwd=self.directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        stderr: list[str] = []
        stdout_lines: queue.Queue[str | None] = queue.Queue()
        threads = [
            threading.Thread(target=_drain_stderr, args=(process.stderr, stderr), daemon=True),
            threading.Thread(
                target=_drain_stdout, args=(process.stdout, stdout_lines), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            announced = self._wait_for_announcement(
                process, stdout_lines, stderr, startup_timeout, announces, required_key
            )
            yield NodeRun(process, stderr, announced)
        finally:
            stop_process(process)
            for thread in threads:
                thread.join(timeout=STOP_TIMEOUT)

    def _wait_for_announcement(
        self,
        process: subprocess.Popen[str],
        stdout_lines: queue.Queue[str | None],
        stderr: list[str],
        timeout: float,
        announces: str,
        required_key: str | None,
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"the test {self.name} did not announce {announces} within {timeout:g} s; "
                    f"stderr:\n{''.join(stderr)}"
                )
            try:
                line = stdout_lines.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the process is exiting
                try:
                    code = process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    code = None
                time.sleep(0.1)  # let the stderr thread catch up
                raise RuntimeError(
                    f"the test {self.name} exited (code {code}) before it was ready; "
                    f"stderr:\n{''.join(stderr)}"
                )
            try:
                announced = json.loads(line)
                if required_key is not None and (
                    not isinstance(announced, dict) or required_key not in announced
                ):
                    raise ValueError("not the announcement")
            except ValueError:
                raise RuntimeError(
                    f"the test {self.name} printed an unexpected line: {line!r}; "
                    f"stderr:\n{''.join(stderr)}"
                ) from None
            return announced


def stop_process(process: subprocess.Popen[str]) -> None:
    """Stop ``process``: SIGTERM, then SIGKILL if it has not exited within
    :data:`STOP_TIMEOUT` seconds; then close its stdout and stderr pipes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _drain_stderr(stream: Any, sink: list[str]) -> None:
    try:
        for line in stream:
            sink.append(line)
            if len(sink) > STDERR_KEEP:
                del sink[0]
    except (OSError, ValueError):  # closed by stop_process()
        pass


def _drain_stdout(stream: Any, lines: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):
        pass
    lines.put(None)
