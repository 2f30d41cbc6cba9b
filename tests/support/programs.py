"""Programs tests run besides portflow (openssl, kcat), by their full path."""

import shutil


def program(name: str) -> str:
    """The full path of ``name`` on PATH; the test fails clearly if it is not installed."""
    path = shutil.which(name)
    assert path, f"{name} is not installed (not on PATH)"
    return path
