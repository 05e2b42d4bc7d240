"""The CANN image beyond "it builds": the release provision picks from a stand-in driver version.info is
the one built and run; its entrypoint sources CANN's scripts as the base does, without importing torch; the
openEuler variant (no groupadd / useradd in its base) still gets its user."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

from .builds import build
from .runner import DOCKER, ROOT, Runner

HOSTS = ROOT / "tests/fixtures/hosts"
DRIVERS = ROOT / "tests/fixtures/ascend-driver"
# stand-in driver version.info -> the CANN release provision must pick (provision/cann.py)
PICKS = {
    HOSTS / "910b3x8/root/usr/local/Ascend/driver/version.info": "8.3.rc2",  # 24.1.rc2.2: too old, mismatch
    DRIVERS / "25.3.rc1/version.info": "8.3.rc2",
    DRIVERS / "25.5.0/version.info": "8.5.1",
    DRIVERS / "25.5.1/version.info": "9.0.0",
}
BUILT_PICK = DRIVERS / "25.5.1/version.info"


def provision_pick(r: Runner, version_info) -> str:
    """`provision env` on the recorded 910b3x8 host with this version.info: the CANN tag of its I2V_IMAGE."""
    hosts = r.work / "hosts"
    shutil.rmtree(hosts, ignore_errors=True)
    hosts.mkdir(parents=True)
    shutil.copy(HOSTS / "_replay.sh", hosts / "_replay.sh")
    host = hosts / "910b3x8"
    shutil.copytree(HOSTS / "910b3x8", host, symlinks=True)
    shutil.copy(version_info, host / "root/usr/local/Ascend/driver/version.info")
    env = {
        "PATH": f"{host / 'bin'}{os.pathsep}{os.path.dirname(shutil.which('bash'))}",
        "I2V_HOST_ROOT": str(host / "root"),
        "I2V_NO_NVML": "1",
        "I2V_HOST_ARCH": (host / "arch").read_text().strip(),
        "DOCKER_HOST": f"unix://{hosts}/none.sock",
    }
    out = hosts / ".env"
    r.run([sys.executable, "-m", "provision", "env", "--output", str(out)], "cann-pick", env=env)
    image = next(
        line.split("=", 1)[1] for line in out.read_text().splitlines() if line.startswith("I2V_IMAGE=")
    )
    return re.search(r"-cann([^-]+)-", image).group(1)


def entrypoint_marks(r: Runner, tag: str) -> tuple[str, str, str]:
    out = r.output(
        [DOCKER, "run", "--rm", tag, "sh", "-c", 'echo "$I2V_STUB_SOURCED|$SOC_VERSION|$(id -un):$(id -gn)"']
    )
    sourced, soc, user = out.split("|")
    return sourced.strip(), soc, user


def cann_checks(r: Runner) -> None:
    from .standins import tag_bases

    with r.check("provision picks the CANN image from stand-in driver version.info files") as c:
        picks = {str(path.relative_to(ROOT)): provision_pick(r, path) for path in PICKS}
        wanted = {str(path.relative_to(ROOT)): tag for path, tag in PICKS.items()}
        assert picks == wanted, f"picked {picks}, wanted {wanted}"
        c["detail"] = ", ".join(f"{p.split('/')[-2]}->{t}" for p, t in picks.items())
    with r.check("CANN 8.3.rc2 image: entrypoint sources toolkit + NNAL --cxx_abi=1 (no torch import)") as c:
        sourced, soc, user = entrypoint_marks(r, "ci/cann:runtime")
        assert sourced == "toolkit() nnal(cxx_abi=1)", sourced
        assert user == "i2v:HwHiAiUser" and soc, user
        c["detail"] = f"{sourced}; SOC_VERSION={soc}; {user}"
    picked = provision_pick(r, BUILT_PICK)
    with r.check(
        f"the picked CANN {picked} image builds on its base and sources its ascendnpu-ir script"
    ) as c:
        args = {"CANN_VERSION": picked}
        tag_bases(r, ("cann", args))
        took, _ = build(r, "cann", "runtime", f"ci/cann:{picked}", extra=args, log=f"build-cann-{picked}")
        sourced, _, _ = entrypoint_marks(r, f"ci/cann:{picked}")
        assert sourced == f"toolkit() ascendnpu-ir-{picked}() nnal(cxx_abi=1)", sourced
        labels = json.loads(
            r.output([DOCKER, "image", "inspect", "--format", "{{json .Config.Labels}}", f"ci/cann:{picked}"])
        )
        assert labels["io.i2v-deploy.cann-version"] == picked, labels
        c["detail"] = f"{took:.0f} s; {sourced}"
    with r.check(
        "CANN openEuler variant: its base has no groupadd/useradd; the image installs them, user i2v"
    ) as c:
        args = {"OS": "openeuler24.03"}
        tag_bases(r, ("cann", args))
        took, _ = build(r, "cann", "runtime", "ci/cann:openeuler", extra=args, log="build-cann-openeuler")
        log = (r.logs / "build-cann-openeuler.log").read_text()
        assert "Setting up passwd" in log, (
            "ensure-useradd installed nothing: was the stand-in missing useradd?"
        )
        _, _, user = entrypoint_marks(r, "ci/cann:openeuler")
        assert user == "i2v:HwHiAiUser", user
        c["detail"] = f"{took:.0f} s; user {user}"
