"""Stand-in base images: Debian bookworm tagged with every base image name the Dockerfiles use.

Each stand-in is as close to its real base as a Debian rootfs can be, for the rows of
shared/CONTAINERS.md "What the stand-in hides" that a stand-in can show:

    localhost/standin:bookworm   nvidia/cuda:*-base-*: a CA store (the real base has ca-certificates)
    localhost/standin:bare       ubuntu:22.04: no ca-certificates (the host's CA sits in
                                 /usr/local/share/ca-certificates, trusted only once the package is installed)
    localhost/standin:cann       quay.io/ascend/cann:*-ubuntu22.04-*: Python 3, stub set_env.sh scripts in the
                                 8.3 layout and the 8.5.1 / 9.0.0 ascendnpu-ir paths, the 8.3 base's ENTRYPOINT;
                                 the NNAL stub imports torch when called without --cxx_abi=, as the real one does
    localhost/standin:cann-noshadow   the openEuler variants: the same without groupadd / useradd

What none of them can show: CUDA / CANN libraries, nvidia-smi / npu-smi, Ubuntu's 3.11.0~rc1 interpreter,
dnf, arm64.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .dockerfile import CPU_BASE, DOCKERFILES, base_images
from .runner import DOCKER, Runner

BOOKWORM, BARE, CANN, CANN_NO_SHADOW = (
    "localhost/standin:bookworm",
    "localhost/standin:bare",
    "localhost/standin:cann",
    "localhost/standin:cann-noshadow",
)
ASCEND_IR_VERSIONS = ("8.5.1", "9.0.0")

BARE_STAND_IN = f"""\
FROM {BOOKWORM}
RUN dpkg --purge ca-certificates && rm -f /etc/ssl/certs/ca-certificates.crt
"""

CANN_STAND_IN = f"""\
FROM {BOOKWORM}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY Ascend /usr/local/Ascend
ENTRYPOINT ["/bin/bash", "-c", "source /usr/local/Ascend/ascend-toolkit/set_env.sh && source /usr/local/Ascend/nnal/atb/set_env.sh && exec \\"$@\\"", "--"]
"""

# Stub scripts: each leaves a mark with the arguments it was sourced with. The NNAL one does what the
# real one does without --cxx_abi=: it asks python3 (the venv's, first on PATH) to import torch.
STUBS = {
    "ascend-toolkit/set_env.sh": 'export I2V_STUB_SOURCED="${I2V_STUB_SOURCED:-} toolkit($*)"\n',
    **{
        f"cann-{v}/share/info/ascendnpu-ir/bin/set_env.sh": f'export I2V_STUB_SOURCED="${{I2V_STUB_SOURCED:-}} '
        f'ascendnpu-ir-{v}($*)"\n'
        for v in ASCEND_IR_VERSIONS
    },
    "nnal/atb/set_env.sh": 'abi=""\nfor a in "$@"; do case "$a" in --cxx_abi=*) abi="${a#--cxx_abi=}";; esac; done\n'
    'if [ -z "$abi" ]; then python3 -c "import torch" 2>/dev/null; abi=found-by-importing-torch; fi\n'
    'export I2V_STUB_SOURCED="${I2V_STUB_SOURCED:-} nnal(cxx_abi=$abi)"\n',
}


def cann_context(r: Runner) -> Path:
    context = r.work / "standin-cann"
    shutil.rmtree(context, ignore_errors=True)
    for path, text in STUBS.items():
        target = context / "Ascend" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (context / "Dockerfile").write_text(CANN_STAND_IN)
    return context


NO_SHADOW_STAND_IN = f"""\
FROM {CANN}
RUN dpkg --purge --force-depends passwd && ! command -v useradd && ! command -v groupadd
"""


def rootfs(r: Runner) -> Path:
    """Debian bookworm (debootstrap minbase, the host's CA bundle), cached as a tarball."""
    tarball = r.work / "rootfs-bookworm.tar"
    if tarball.exists():
        return tarball
    mirror = next(
        (
            line
            for line in r.output(
                ["apt-get", "indextargets", "--format", "$(REPO_URI)", "Created-By: Packages"]
            ).splitlines()
            if line.rstrip("/").endswith("/debian")
        ),
        "http://deb.debian.org/debian/",
    )
    tree = r.work / "rootfs"
    shutil.rmtree(tree, ignore_errors=True)
    r.run(
        ["debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm", str(tree), mirror],
        "debootstrap",
        timeout=900,
    )
    # Trust what the host trusts: a TLS-inspecting egress proxy re-signs the package index here.
    (tree / "usr/local/share/ca-certificates").mkdir(parents=True, exist_ok=True)
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(crt, tree / "usr/local/share/ca-certificates" / crt.name)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", tree / "etc/ssl/certs/ca-certificates.crt")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (tree / junk).glob("*"):
            if item.is_file():
                item.unlink()
    r.run(["tar", "-C", str(tree), "-cf", str(tarball) + ".part", "."], "debootstrap")
    os.replace(str(tarball) + ".part", tarball)
    shutil.rmtree(tree, ignore_errors=True)
    return tarball


def build_stand_ins(r: Runner) -> list[str]:
    tarball = rootfs(r)
    if r.run([DOCKER, "image", "inspect", BOOKWORM], "base", check=False).returncode != 0:
        r.run(
            [
                DOCKER,
                "import",
                "-c",
                "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
                "-c",
                "ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
                "-c",
                'CMD ["/bin/bash"]',
                str(tarball),
                BOOKWORM,
            ],
            "base",
        )
    r.run([DOCKER, "build", "-q", "-t", BARE, "-"], "base", input=BARE_STAND_IN)
    r.run([DOCKER, "build", "-q", "-t", CANN, str(cann_context(r))], "base")
    r.run([DOCKER, "build", "-q", "-t", CANN_NO_SHADOW, "-"], "base", input=NO_SHADOW_STAND_IN)
    return [BOOKWORM, BARE, CANN, CANN_NO_SHADOW]


def stand_in_for(image: str) -> str:
    if image == CPU_BASE:
        return BARE
    if image.startswith("quay.io/ascend/cann:"):
        return CANN_NO_SHADOW if "-openeuler" in image else CANN
    return BOOKWORM


def tag_bases(r: Runner, *variants: tuple[str, dict[str, str]]) -> list[str]:
    """Tag the stand-in for every base the Dockerfiles name (defaults, the cpu target, and `variants`:
    (kind, build args) pairs such as ("cann", {"OS": "openeuler24.03"}))."""
    wanted = [(kind, {}) for kind in DOCKERFILES] + list(variants)
    images = {image for kind, args in wanted for image in base_images(DOCKERFILES[kind], args)} | {CPU_BASE}
    for image in sorted(images):
        r.run([DOCKER, "tag", stand_in_for(image), image], "base")
    return sorted(images)
