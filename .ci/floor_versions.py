"""Print what the floor venv holds; fail if a direct runtime dependency is not at its declared floor.

Run with the floor venv's python (``make test-floor`` does, before the tests). The direct
dependencies are read from the installed provider's metadata (pyproject's ``dependencies``), so
the list follows pyproject. Each one must be installed at exactly the lowest version its
specifier allows: if not, the declared floor cannot be installed beside Airflow's floor (Airflow
asks for more) and pyproject's floor is wrong. The optional extras the floor venv installs
(``EXTRAS``, the Makefile's first floor step) are checked the same way. Names given as arguments
are shown but not checked.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement
from packaging.version import Version

PROVIDER = "airflow-provider-ogc"
# The extras the Makefile installs in the floor venv with the runtime dependencies (lowest-direct).
EXTRAS = ["openlineage", "ui"]
# Not ours, but what decides whether Airflow 3.1.0 itself works: shown so logs can be compared.
ALSO_SHOWN = ["httpcore", "botocore", "tenacity", "structlog", "fastapi", "starlette", "cadwyn", "pydantic"]


def installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def floor_of(req: Requirement) -> Version | None:
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(lows) if lows else None


def main() -> int:
    direct = [Requirement(r) for r in requires(PROVIDER) or []]
    direct = [
        r for r in direct if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ["", *EXTRAS])
    ]
    print(
        f"Floor venv (Python {sys.version.split()[0]}): direct runtime dependencies of {PROVIDER}"
        f" (with extras {', '.join(EXTRAS)})"
    )
    unchecked = {a.lower() for a in sys.argv[1:]}
    wrong = []
    for req in direct:
        have = installed(req.name)
        low = floor_of(req)
        ok = have != "-" and low is not None and Version(have) == low
        verdict = "at floor" if ok else "not checked" if req.name.lower() in unchecked else "NOT AT FLOOR"
        if verdict == "NOT AT FLOOR":
            wrong.append(f"{req.name}: declared {req.specifier}, installed {have}")
        print(f"  {req.name:<36} {have:<10} declared {req.specifier!s:<10} {verdict}")
    print("  also: " + ", ".join(f"{n} {installed(n)}" for n in ALSO_SHOWN))
    if wrong:
        print("Declared floors not installed (raise them in pyproject.toml, or fix the venv):")
        print("\n".join(f"  {w}" for w in wrong))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
