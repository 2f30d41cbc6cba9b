"""Running the `portflow` command as a user does: a separate process with its own environment."""

import subprocess
import sys


def portflow(env: dict, *args: str, timeout: float = 600) -> str:
    """Run `portflow ARGS…`, assert it succeeded, return its standard output."""
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout
