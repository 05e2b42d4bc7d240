#!/bin/sh
# install-python STAGE [APT_PACKAGE...]: the interpreter of the image's venv, plus the stage's apt packages.
#
#   PYTHON_SOURCE=uv      (release builds) CPython ${PYTHON_VERSION} from python-build-standalone through uv
#                         ${UV_VERSION} into /opt/python (UV_PYTHON_INSTALL_MIRROR: a mirror of those
#                         downloads); the runtime stage copies /opt/python and installs nothing for Python.
#                         Ubuntu 22.04's own python3.11 is 3.11.0~rc1 (fixes only through Ubuntu Pro).
#   PYTHON_SOURCE=system  the base image's own python${PYTHON_VERSION} from apt, refused unless it is a final
#                         release; for bases that ship a real one (the container checks' Debian stand-in: 3.11.2).
#
# STAGE build: the interpreter and an empty venv at /opt/venv; STAGE runtime: what the runtime stage needs.
# Either way /opt/python/bin/python3 is the interpreter and its headers (Python.h, for Triton's launcher) exist.
set -eu
stage=$1
shift
here=$(dirname "$0")
: "${PYTHON_SOURCE:?}" "${PYTHON_VERSION:?}"
# An empty mirror build arg means "none" (uv would reject an empty URL).
if [ -z "${UV_PYTHON_INSTALL_MIRROR:-}" ]; then unset UV_PYTHON_INSTALL_MIRROR; fi

case "$PYTHON_SOURCE:$stage" in
uv:build)
    "$here/apt-install" ca-certificates python3-venv "$@"
    # uv itself comes from the Python package index (PIP_INDEX_URL), through a throwaway venv.
    python3 -m venv /tmp/uv && /tmp/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION:?}"
    UV_PYTHON_INSTALL_DIR=/opt/python /tmp/uv/bin/uv python install --no-bin "${PYTHON_VERSION}"
    # One stable path whatever the patch release: /opt/python/bin -> cpython-3.11.<n>-linux-<arch>-gnu/bin
    ln -s "$(basename "$(find /opt/python -mindepth 1 -maxdepth 1 -type d -name "cpython-${PYTHON_VERSION}.*")")/bin" \
          /opt/python/bin
    rm -rf /tmp/uv /root/.cache/uv
    ;;
uv:runtime)
    if [ "$#" -gt 0 ]; then "$here/apt-install" "$@"; fi
    ;;
system:build)
    "$here/apt-install" ca-certificates "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" \
        "python${PYTHON_VERSION}-dev" "$@"
    mkdir -p /opt/python/bin && ln -s "/usr/bin/python${PYTHON_VERSION}" /opt/python/bin/python3
    ;;
system:runtime)
    "$here/apt-install" "python${PYTHON_VERSION}" "libpython${PYTHON_VERSION}-dev" "$@"
    ;;
*)
    echo "install-python: PYTHON_SOURCE=$PYTHON_SOURCE / stage $stage: expected PYTHON_SOURCE uv or system, stage build or runtime" >&2
    exit 2
    ;;
esac
# Refuses a pre-release (Ubuntu 22.04's 3.11.0~rc1) or an interpreter without Python.h.
/opt/python/bin/python3 /usr/local/lib/i2v-checks/interpreter.py "$PYTHON_VERSION"
# The venv from the real path (not the /opt/python/bin link), so its home finds the standard library.
if [ "$stage" = build ]; then "$(readlink -f /opt/python/bin/python3)" -m venv /opt/venv; fi
