"""The build stage of every Harbor image: a virtualenv at /opt/harbor holding exactly what the runtime needs.

    python3 build_venv.py --constraints constraints.txt [--warm MODULE]... PACKAGE_DIR...

Contract: wheels for the given package folders and every dependency are built or fetched by pip with the
repo's `constraints.txt` (so an image holds the versions CI tested), then installed into a fresh virtualenv
with `--no-index --no-deps` from that wheel folder alone and checked with `pip check`. Third-party wheels
are kept in a wheelhouse (a build cache mount shared by every image's build) and resolved from it alone
when it holds every pinned one, so the scientific stack is downloaded once per machine, not once per image,
also behind a proxy that makes pip's HTTP cache useless. The runtime
virtualenv has no pip, setuptools or wheel, no `tests` folders, C headers or Cython sources of any package
(build and test inputs only), and bytecode only for the modules loaded by importing each server package's
`server` module (`src/<pkg>/server.py`) and each `--warm` module, compiled as unchecked-hash .pyc (valid
whatever the file times become when the folder is copied into the runtime stage). So a server starts about
as fast as with full bytecode for a fifth of its size, the build fails if a server cannot import, and
nothing is written at run time (`PYTHONDONTWRITEBYTECODE`, read-only root file systems).

Runs with the base image's own `python3` (Debian's /usr/bin/python3 or python.org's /usr/local/bin/python3)
and only the standard library. A CA bundle for a TLS-intercepting proxy may be passed as the build secret
`ca-bundle` (`--secret id=ca-bundle,src=FILE`); it is used by pip here and never lands in a layer. This
module runs at image build time only; it must never be copied into a runtime stage.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENV = Path("/opt/harbor")
CA_BUNDLE = Path("/run/secrets/ca-bundle")
WHEELHOUSE = Path("/var/cache/harbor-wheels")  # a cache mount in the Containerfiles, shared by every image
BUILD_PIP = "pip==26.3"  # the base's own pip may be too old to build an sdist (rouge-score) the PEP 517 way
BUILD_ONLY_SUFFIXES = {".c", ".cc", ".cpp", ".h", ".hpp", ".pxd", ".pxi", ".pyx"}
WARM = r"""
import importlib, py_compile, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
prefix = sys.prefix + "/"
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None) or ""
    if source.startswith(prefix) and source.endswith(".py"):
        py_compile.compile(source, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    subprocess.run(argv, check=True, env=env)


def _pip_env() -> dict[str, str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    if CA_BUNDLE.is_file() and CA_BUNDLE.stat().st_size > 0:
        env["PIP_CERT"] = str(CA_BUNDLE)
    return env


def _prune(venv: Path) -> None:
    """Drop what only a build or a test run reads: test suites, C/C++ and Cython sources and headers, bytecode."""
    for site in venv.glob("lib/python3*/site-packages"):
        for folder in sorted(site.rglob("tests"), key=lambda p: len(p.parts), reverse=True):
            if folder.is_dir():
                shutil.rmtree(folder)
        for file in list(site.rglob("*")):
            if file.suffix in BUILD_ONLY_SUFFIXES and file.is_file():
                file.unlink()
        for cache in list(site.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)


def build(packages: list[str], constraints: Path, warm: list[str]) -> None:
    """Build the runtime virtualenv at /opt/harbor; a failing step stops the image build with its output."""
    env = _pip_env()
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harbor-build-") as scratch:
        tools, local, wheels = (Path(scratch) / name for name in ("pip", "local", "wheels"))
        _run([sys.executable, "-m", "venv", str(tools)])
        pip = [str(tools / "bin" / "python"), "-m", "pip"]
        if not any(WHEELHOUSE.glob(BUILD_PIP.replace("==", "-") + "-*.whl")):
            _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(WHEELHOUSE), BUILD_PIP], env)
        _run([*pip, "install", "--no-index", "--find-links", str(WHEELHOUSE), BUILD_PIP], env)
        _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(local), *packages], env)  # ours: hatchling only
        ours = sorted(str(w) for w in local.glob("*.whl"))
        resolve = [*pip, "wheel", "--wheel-dir", str(wheels), "--constraint", str(constraints), *ours]
        if not _run_offline([*resolve, "--no-index", "--find-links", str(WHEELHOUSE)], env):
            _run(resolve, env)
            _stash(wheels, exclude={Path(w).name for w in ours})
        _run([sys.executable, "-m", "venv", "--without-pip", str(VENV)])
        target = ["--python", str(VENV / "bin" / "python")]
        found = sorted(str(w) for w in wheels.glob("*.whl"))
        _run([*pip, *target, "install", "--no-index", "--no-deps", "--no-compile", *found], env)
        _run([*pip, *target, "check"], env)
    _prune(VENV)
    modules = [*_server_modules(packages), *warm]
    if modules:
        _run([str(VENV / "bin" / "python"), "-B", "-c", WARM, *modules])


def _run_offline(argv: list[str], env: dict[str, str]) -> bool:
    """Resolve from the wheelhouse alone; False (and nothing kept) when a pinned wheel is not there yet."""
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print("(not all in the wheelhouse yet: resolving online)", file=sys.stderr, flush=True)
    return done.returncode == 0


def _stash(wheels: Path, exclude: set[str]) -> None:
    """Keep third-party wheels for the next image's build (atomic renames: builds may run side by side)."""
    for wheel in wheels.glob("*.whl"):
        kept = WHEELHOUSE / wheel.name
        if wheel.name not in exclude and not kept.exists():
            partial = kept.with_name(f".{wheel.name}.{os.getpid()}")
            shutil.copyfile(wheel, partial)
            partial.rename(kept)


def _server_modules(packages: list[str]) -> list[str]:
    """`<pkg>.server` for every package folder laid out as `src/<pkg>/server.py` (every server of the repo)."""
    return sorted(f"{entry.parent.name}.server" for p in packages for entry in Path(p).glob("src/*/server.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, required=True)
    parser.add_argument("--warm", action="append", default=[], metavar="MODULE", help="import and keep its .pyc")
    parser.add_argument("packages", nargs="+", help="folders with a pyproject.toml")
    args = parser.parse_args()
    build(args.packages, args.constraints, args.warm)


if __name__ == "__main__":
    main()
