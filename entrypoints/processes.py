"""Child processes of the embedded stack and the tests: started with their output in a log
file, tied to their parent (PR_SET_PDEATHSIG, so a killed parent leaves nothing behind), and
stopped by PID."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from portflow.errors import PortflowError


class StackError(PortflowError, RuntimeError):
    """The embedded stack could not start; the message says what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies (Linux), so nothing is orphaned."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0  # where this process's output begins in its (appended) log file

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM without waiting (to stop several children at once)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 15.0) -> None:
        if not self.alive():
            return
        self.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: the crash a stream processor must survive."""
        if self.alive():
            self.process.kill()
            self.process.wait(5)

    def logged_since_start(self, text: bytes) -> bool:
        """Whether this process has written ``text`` to its log."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start)
                return text in log.read()
        except OSError:
            return False

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, argv: list[str], log_dir: Path, env: Mapping[str, str] | None = None) -> Child:
    """A child process logging to ``log_dir/name.log`` (appended), tied to this process."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        start = log.tell()
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches `up` only
        )
    return Child(name, process, log_path, start)


def wait_until(check: Callable[[], bool], child: Child, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise StackError(f"{what} exited at start-up:\n{child.tail()}")
        if check():
            return
        time.sleep(0.05)
    raise StackError(f"{what} did not become ready within {timeout_s:g}s:\n{child.tail()}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def http_get(host: str, port: int, path: str, timeout_s: float) -> tuple[int, bytes]:
    """GET ``http://host:port/path`` (a local server of the stack): its status and body.
    Raises ``OSError`` or ``http.client.HTTPException`` when it does not answer."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
