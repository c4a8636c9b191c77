"""What CI runs (``bash .ci/run`` calls ``nox``), each session in a virtual environment of its own, made afresh.

- ``tests-3.10`` ... ``tests-3.13``: the README's second command, on every Python that setup.cfg claims,
  with the newest dependencies its ranges allow; ``lowest``: the same on the oldest Python with the lowest
  version of every declared dependency (and the example project);
- ``examples``: the README's first command;
- ``wheel``: builds the sdist and wheel, checks them as PyPI will, installs the wheel (not editable) and
  runs the example project against it, and an unrelated project with ``-W error`` beside it;
- ``lint``, ``docs``, ``bench``: ruff and mypy, the Sphinx builds, a smoke run of the benchmarks.

A claimed Python that is not on this machine (``pythonX.Y`` on PATH, or under pyenv's root) is skipped, and
said so at the start and at the end of the run.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")

#: The README's two commands, run as written (tests/test_package.py checks that the README has them).
EXAMPLES_COMMAND = 'python -m pip install -e ".[pytest]" && python -m pytest examples'
TESTS_COMMAND = 'python -m pip install -e ".[dev]" && python -m pytest'

#: Every Python that setup.cfg claims, oldest first.
CLAIMED = re.findall(r"Programming Language :: Python :: (3\.\d+)$", SETUP["metadata"]["classifiers"], re.M)
#: What the lowest-versions session pins: the declared runtime dependencies (install_requires and the
#: extras a user installs), each at the lowest version its range allows.
LOWEST_FROM = ("install_requires", "pytest", "psycopg", "sqlite", "migrate", "mysql")

nox.options.sessions = ["lint", "docs", "bench", "examples", "tests", "lowest", "package", "wheel"]
nox.options.default_venv_backend = "venv"  # what a new user has: python -m venv, then pip
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = False  # skipped, and said so


def _works(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "pass"], capture_output=True).returncode == 0
    except OSError:
        return False


def _pyenv_root() -> str:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    pyenv = shutil.which("pyenv")
    asked = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip() if pyenv else ""
    return asked or os.path.expanduser("~/.pyenv")


def _find(version: str) -> str | None:
    """The folder of a working ``python<version>``: on PATH, else the newest under pyenv's root."""
    on_path = shutil.which(f"python{version}")
    if on_path and _works(on_path):
        return os.path.dirname(on_path)
    found = sorted(
        Path(_pyenv_root(), "versions").glob(f"{version}.*/bin/python{version}"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)],
    )
    return str(found[-1].parent) if found and _works(str(found[-1])) else None


FOUND = {version: _find(version) for version in CLAIMED}
MISSING = [version for version, folder in FOUND.items() if folder is None]
#: The lowest versions run on the oldest claimed Python there is.
OLDEST = next((version for version in CLAIMED if version not in MISSING), CLAIMED[0])
# nox looks for pythonX.Y on PATH: put the ones found first (before pyenv's shims, which may not run them).
os.environ["PATH"] = os.pathsep.join([*dict.fromkeys(filter(None, FOUND.values())), os.environ["PATH"]])
if MISSING:
    skipped = ", ".join(f"tests-{version}" for version in MISSING)
    print(f"noxfile: Python {', '.join(MISSING)} not on this machine, so not tested: {skipped}", end="")
    print(f"; the lowest versions run on Python {OLDEST}" if CLAIMED[0] != OLDEST else "")


def _readme(session: nox.Session, command: str) -> None:
    session.create_tmp()  # sets TMPDIR: pytest's temporary folders apart from other pytest runs of the machine
    session.run("bash", "-c", command, external=True)


@nox.session(python=CLAIMED)
def tests(session: nox.Session) -> None:
    """The README's second command: the project's own tests, with the newest dependencies."""
    _readme(session, TESTS_COMMAND)


@nox.session(python=OLDEST)
def lowest(session: nox.Session) -> None:
    """The project's tests and the example project with the lowest version of every declared dependency."""
    constraints = Path(session.create_tmp(), "lowest.txt")
    constraints.write_text("\n".join(_lowest_versions()) + "\n")
    session.log("pinned: " + ", ".join(_lowest_versions()))
    session.install("-c", str(constraints), "-e", ".[dev]")
    session.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=False)
    session.run("python", "-m", "pytest")
    session.run("python", "-m", "pytest", "examples")


#: A requirement as setup.cfg states them: name[extras]>=lowest,<next major.
_RANGE = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*>=\s*([0-9][^,;\s]*)(?:,\s*<\s*[0-9][^,;\s]*)?")


def _lowest_versions() -> list[str]:
    """``name==lowest`` for every declared runtime dependency; one without a lower bound is an error."""
    options, extras = SETUP["options"], SETUP["options.extras_require"]
    lines = [options["install_requires"], *(extras[name] for name in LOWEST_FROM[1:])]
    requirements = [line.strip() for line in "\n".join(lines).splitlines() if line.strip()]
    pins = set()
    for requirement in requirements:
        found = re.fullmatch(
            r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*>=\s*([0-9][^,;\s]*)(?:,\s*<\s*[0-9][^,;\s]*)?", requirement
        )
        if found is None:
            raise ValueError(f"setup.cfg: {requirement!r} needs a range `>=lowest,<next major` for the lowest run")
        pins.add(f"{found.group(1)}=={found.group(2)}")
    return sorted(pins)


@nox.session
def examples(session: nox.Session) -> None:
    """The README's first command: the example shop app, tested with the plugin; then again with pytest-xdist."""
    _readme(session, EXAMPLES_COMMAND)
    session.install("pytest-xdist")
    session.run("python", "-m", "pytest", "examples", "-n", "2")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-e", ".[dev]", "nox")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "peewee_async_testing", "tests", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]")
    build = session.create_tmp()
    session.run("python", "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "html", "docs", f"{build}/html")
    session.run("python", "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "doctest", "docs", f"{build}/doctest")


@nox.session
def bench(session: nox.Session) -> None:
    """A smoke run of the benchmark harness (tiny sizes): it must keep working; its figures are not checked."""
    session.install("-e", ".[bench]")
    out = session.create_tmp()
    session.run("python", "bench/run.py", "--quick", "--out", out)


def _dist(session: nox.Session) -> Path:
    """Where ``package`` leaves the sdist and wheel for ``wheel``: beside the sessions' environments."""
    return Path(session.virtualenv.location).parent / "dist"


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and wheel as for PyPI, and check them as PyPI will."""
    dist = _dist(session)
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build", "twine")
    session.run("python", "-m", "build", "--outdir", str(dist), ".")
    session.run("twine", "check", "--strict", *map(str, dist.iterdir()))
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        shipped = [name.split("/", 1)[-1] for name in archive.getnames()]
    stray = [name for name in shipped if name.startswith(("tests/", "conftest.py", "examples/", "bench/"))]
    if stray:
        session.error(f"the sdist ships files it cannot run from the unpacked archive: {stray}")


@nox.session(requires=["package"])
def wheel(session: nox.Session) -> None:
    """Install the wheel (not editable) in a fresh environment and use it as a user would, away from the sources."""
    (built,) = _dist(session).glob("*.whl")
    work = Path(session.create_tmp())  # inside the session's virtual environment: new with it

    # Installed without the [pytest] extra: an unrelated project in the same environment is undisturbed by
    # us, even under -W error, and a project that names its database is told what to install. Each project
    # has its own ini file, so that no ini file above it (such as this repository's) is taken for its own.
    session.install(str(built), "pytest")
    unrelated = work / "unrelated"
    unrelated.mkdir()
    (unrelated / "pytest.ini").write_text("[pytest]\n")
    (unrelated / "test_unrelated.py").write_text("def test_nothing_to_do_with_databases():\n    assert True\n")
    session.chdir(unrelated)
    session.run("python", "-m", "pytest", "-W", "error", "-p", "no:cacheprovider")
    (unrelated / "pytest.ini").write_text("[pytest]\npeewee_async_database = app.db:database\n")
    said = session.run("python", "-m", "pytest", "-p", "no:cacheprovider", success_codes=[4], silent=True)
    if "pip install 'peewee-async-testing[pytest]'" not in str(said):
        session.error(f"a configured project without the [pytest] extra was not told what to install: {said}")

    # The example project against the installed wheel, from a copy away from the sources.
    session.install(f"{built}[pytest]")
    project = work / "examples"
    shutil.copytree(ROOT / "examples", project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    session.chdir(project)
    where = session.run("python", "-c", "import peewee_async_testing as p; print(p.__file__)", silent=True)
    if Path(session.virtualenv.location) not in Path(str(where).strip()).parents:
        session.error(f"the example project did not import the installed wheel: {where}")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider")
