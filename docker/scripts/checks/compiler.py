"""Build-time check: this image can compile what Triton compiles on the first compiled call.

Triton (torch.compile's GPU backend, SageAttention's kernels) builds a small C launcher as a Python
extension the first time a kernel runs: it takes $CC, else gcc, else clang ("Failed to find C compiler"
otherwise) and includes Python.h from sysconfig's include path. This does the same with a one-function
extension and imports it, so a runtime stage without a compiler or headers fails the build, not a job.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

SOURCE = """
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "i2v_cc_check", NULL, -1, methods};
PyMODINIT_FUNC PyInit_i2v_cc_check(void) { return PyModule_Create(&module); }
"""


def compiler() -> str:
    found = os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")
    if not found:
        sys.exit("no C compiler (CC, gcc, clang): Triton fails with 'Failed to find C compiler'; "
                 "install gcc and libc6-dev in the runtime stage")
    return found


def main() -> int:
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        sys.exit(f"{include}/Python.h is missing: Triton's launcher cannot be built; install the interpreter's headers")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    with tempfile.TemporaryDirectory() as tmp:
        source, library = Path(tmp) / "check.c", Path(tmp) / f"i2v_cc_check{suffix}"
        source.write_text(SOURCE)
        cmd = [compiler(), str(source), "-O2", "-shared", "-fPIC", f"-I{include}", "-o", str(library)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        spec = importlib.util.spec_from_file_location("i2v_cc_check", library)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.answer() == 42
    print(f"compiler: {cmd[0]} builds and loads a Python extension against {include}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
