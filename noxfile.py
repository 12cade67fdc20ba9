"""Developer sessions, each named for what it checks. They run in the project's uv environment.

nox -s tests        the test suite with the coverage gate (same as `uv run pytest`)
nox -s lint         ruff check and ruff format --check
nox -s typecheck    mypy --strict over src/ and the typed usage example
nox -s bench        benchmarks: side-by-side ratios, raw figures to benchmarks/results/
nox -s soak         the long reliability suite against the local server
nox -s docs         the documentation site, built strictly (site/)
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "lint", "typecheck"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite, as CI does."""
    session.run("uv", "run", "pytest", *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff's lint rules and formatting."""
    session.run("uv", "run", "ruff", "check", ".", external=True)
    session.run("uv", "run", "ruff", "format", "--check", ".", external=True)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library and the typed example of the public API."""
    session.run("uv", "run", "mypy", "--strict", "src", "examples/typed_usage.py", external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; prints one markdown table of ratios."""
    session.run("uv", "run", "python", "-m", "benchmarks", *session.posargs, external=True)


@nox.session
def soak(session: nox.Session) -> None:
    """The long reliability run (thousands of calls with injected faults)."""
    session.run(
        "uv",
        "run",
        "pytest",
        "tests/reliability",
        "--no-cov",
        "--soak",
        *session.posargs,
        external=True,
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (mkdocs-material, API reference from the docstrings) in
    strict mode: a broken link or reference fails it. Output in site/."""
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("uv", "run", "--group", "docs", "mkdocs", "build", "--strict", *session.posargs,
                external=True)  # fmt: skip
