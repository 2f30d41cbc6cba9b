"""The packages import one way (pyproject.toml, [tool.importlinter]): entry points, then the
worker and the producers, then portflow's services, adapters and pure domain."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_layer_contract_is_kept():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_a_contract_upside_down_is_broken_so_the_check_sees_real_imports(tmp_path):
    config = tmp_path / "upside-down.toml"
    config.write_text("""
[tool.importlinter]
root_packages = ["entrypoints", "portflow"]

[[tool.importlinter.contracts]]
name = "portflow above the entry points"
type = "layers"
layers = ["portflow", "entrypoints"]
""")
    result = lint("--config", str(config))
    assert result.returncode == 1, result.stdout
    assert "entrypoints.cli." in result.stdout
    assert " -> portflow." in result.stdout


def test_every_module_of_every_package_imports():
    """A rename that left an import behind fails here, not in the one test that uses it."""
    import importlib
    import pkgutil

    failed = []
    for package in ("portflow", "streams", "producers", "entrypoints"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if module.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(module.name)
            except Exception as exc:
                failed.append(f"{module.name}: {type(exc).__name__}: {exc}")
    assert not failed, "\n".join(failed)
