"""What ships: each Dockerfile's final (`runtime`) stage and the scripts it runs, read as data and run on
fixtures. The rows of shared/CONTAINERS.md "What the stand-in hides" that only the real bases show are held
here; the container checks (tests/test_containers.py) build and run what the stand-ins can show.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(DOCKER / "scripts" / "checks"))
from container_checks.dockerfile import final_stage, stages  # noqa: E402
from interpreter import problem  # noqa: E402

CUDA, CANN = DOCKER / "Dockerfile.cuda", DOCKER / "Dockerfile.cann"


def runs(stage: list[str]) -> str:
    return "\n".join(line for line in stage if line.startswith("RUN "))


def arg_default(dockerfile: Path, name: str) -> str:
    return re.search(rf"(?m)^ARG {name}=(.*)$", dockerfile.read_text()).group(1).strip('"')


# ---------------------------------------------------------------------------------------------- CUDA / CPU


def test_cuda_runtime_stage_takes_the_managed_interpreter_not_ubuntus_python():
    runtime = final_stage(CUDA)
    assert "COPY --from=base /opt/python /opt/python" in runtime
    assert not re.search(
        r"apt-install[^\n]*python3\.11|apt-get install[^\n]*python", runtime_text := runs(runtime)
    ), runtime_text
    assert arg_default(CUDA, "PYTHON_SOURCE") == "uv"  # release builds: python-build-standalone via uv
    bake = (DOCKER / "docker-bake.hcl").read_text()
    assert "PYTHON_SOURCE" not in bake  # no bake target falls back to the base's python
    base = "\n".join(stages(CUDA)["base"])
    assert "RUN install-python build" in base and "ARG PYTHON_SOURCE" in base


def test_cuda_runtime_stage_has_a_ca_store_a_compiler_and_headers():
    line = next(line for line in final_stage(CUDA) if line.startswith("RUN install-python runtime"))
    packages = line.split("&&")[0].split()[3:]
    assert {"ca-certificates", "gcc", "libc6-dev"} <= set(packages), packages


def test_cuda_test_stage_builds_the_triton_style_extension_and_makes_an_https_request():
    test = runs(stages(CUDA)["test"])
    assert "i2v-checks/compiler.py" in test and 'i2v-checks/https.py "${PIP_INDEX_URL}"' in test


@pytest.mark.parametrize(
    ("version_info", "reason"),
    [
        (
            (3, 11, 0, "candidate", 1),
            "Python 3.11.0rc1 is a candidate release, not a final 3.11: use PYTHON_SOURCE=uv",
        ),
        ((3, 11, 0, "beta", 4), "Python 3.11.0b4 is a beta release"),
        ((3, 10, 12, "final", 0), "Python 3.10.12 is not 3.11"),
    ],
)
def test_the_interpreter_check_refuses_ubuntus_release_candidate(tmp_path, version_info, reason):
    (tmp_path / "Python.h").touch()
    assert reason in problem(version_info, "3.11", str(tmp_path))


def test_the_interpreter_check_wants_python_h(tmp_path):
    assert problem((3, 11, 14, "final", 0), "3.11", str(tmp_path)).endswith(
        "Python.h is missing: Triton and torch.compile build C code against it"
    )
    (tmp_path / "Python.h").touch()
    assert problem((3, 11, 14, "final", 0), "3.11", str(tmp_path)) is None


# ---------------------------------------------------------------------------------------------- CANN


def test_cann_runtime_stage_installs_useradd_before_using_it():
    text = runs(final_stage(CANN))
    assert text.index("ensure-useradd") < text.index("groupadd") < text.index("useradd --uid")


def test_cann_runtime_stage_sources_cann_env_in_entrypoint_and_login_shells():
    runtime = final_stage(CANN)
    assert "COPY docker/scripts/cann-env.sh /usr/local/lib/i2v/cann-env.sh" in runtime
    assert "COPY docker/scripts/cann-profile.sh /etc/profile.d/i2v-cann.sh" in runtime
    assert 'ENTRYPOINT ["dumb-init", "--", "i2v-entrypoint"]' in runtime
    env = next(line for line in runtime if line.startswith("ENV ") and "I2V_CANN_VERSION" in line)
    assert "I2V_CANN_VERSION=${CANN_VERSION}" in env  # which cann-<v>/.../ascendnpu-ir script to source


# ---------------------------------------------------------------------------------------------- both


@pytest.mark.parametrize("dockerfile", [CUDA, CANN], ids=["Dockerfile.cuda", "Dockerfile.cann"])
def test_torchaudio_comes_with_torch_from_the_torch_index(dockerfile):
    deps = runs(stages(dockerfile)["deps"])
    torch_line = next(line for line in deps.splitlines() if '"torch==${TORCH_VERSION}"' in line)
    assert '--index-url "${TORCH_INDEX_URL}"' in torch_line
    assert '${TORCHAUDIO_VERSION:+"torchaudio==${TORCHAUDIO_VERSION}"}' in torch_line
    assert arg_default(dockerfile, "TORCHAUDIO_VERSION") == arg_default(dockerfile, "TORCH_VERSION")
    assert "pip-check" in deps


def lock_names(name: str) -> set[str]:
    text = (DOCKER / "requirements" / name).read_text()
    return {
        line.split("==")[0].lower() for line in text.splitlines() if line and not line.startswith((" ", "#"))
    }


def lock_pin(name: str, package: str) -> str:
    return re.search(rf"(?m)^{package}==(\S+) ", (DOCKER / "requirements" / name).read_text()).group(1)


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_locks_carry_what_the_other_issues_bring(arch):
    cuda, cann = lock_names(f"cuda-{arch}.txt"), lock_names(f"cann-{arch}.txt")
    for names in (cuda, cann):
        assert {"ltx-pipelines", "ltx-core", "einops", "scipy", "psycopg", "psycopg-binary"} <= names
        assert "torchaudio" not in names and "torch" not in names and "openai" not in names
    # SageAttention: diffusers 0.42.1 takes >= 2.1.1 only, which PyPI does not have (its 1.0.6 is refused):
    # no lock carries it; the CUDA image installs a 2.x wheel from docker/wheels/ when one is there.
    assert "sageattention" not in cuda and "sageattention" not in cann
    assert {"protobuf", "pathlib2"} <= cann
    assert lock_pin(f"cann-{arch}.txt", "protobuf").startswith("3.20.")  # what the CANN bases pin


def test_the_cuda_image_takes_a_sageattention_wheel_diffusers_accepts():
    pytest.importorskip("diffusers")
    from diffusers.models import attention_dispatch

    from i2v.devices.cuda import ATTENTION_PACKAGES

    assert ATTENTION_PACKAGES["sage"] == ("sageattention", attention_dispatch._REQUIRED_SAGE_VERSION)
    major = attention_dispatch._REQUIRED_SAGE_VERSION.split(".")[0]
    deps = (DOCKER / "Dockerfile.cuda").read_text().split("FROM deps AS app")[0]
    assert f"/wheels/sageattention-{major}*.whl" in deps and "--no-index" in deps
