"""Build-time check: the venv's interpreter is a final CPython release of the wanted minor, with headers.

    python interpreter.py 3.11      # exit 0, or exit 1 with the reason

Ubuntu 22.04's `python3.11` package is 3.11.0~rc1 (fixes only through Ubuntu Pro), which is why the CUDA
image takes CPython from python-build-standalone (docker/scripts/install-python.sh). Python.h must be
there too: Triton and torch.compile build C code against it at run time.
"""

from __future__ import annotations

import os
import sys
import sysconfig


def problem(version_info: tuple, want: str, include_dir: str) -> str | None:
    """Why this interpreter will not do, or None. `version_info` as sys.version_info (a 5-tuple)."""
    major, minor, micro, level, serial = version_info[:5]
    release = f"{major}.{minor}.{micro}" + ("" if level == "final" else f"{level[0] if level != 'candidate' else 'rc'}{serial}")
    if f"{major}.{minor}" != want:
        return f"Python {release} is not {want}: the locks are resolved for {want}"
    if level != "final":
        return (f"Python {release} is a {level} release, not a final {want}: use PYTHON_SOURCE=uv "
                f"(Ubuntu 22.04's python{want} is {want}.0~rc1)")
    if not os.path.exists(os.path.join(include_dir, "Python.h")):
        return f"{include_dir}/Python.h is missing: Triton and torch.compile build C code against it"
    return None


def main(want: str) -> int:
    found = problem(tuple(sys.version_info), want, sysconfig.get_paths()["include"])
    if found:
        print(f"{sys.executable}: {found}", file=sys.stderr)
        return 1
    print(f"interpreter: {sys.executable} {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
