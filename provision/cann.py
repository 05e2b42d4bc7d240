"""Which CANN image an Atlas host's NPU driver runs. Torch-free, pure.

Each CANN release needs a minimum Ascend HDK (NPU driver); the host's driver version is the
`Version` / `package_version` of /usr/local/Ascend/driver/version.info (`HardwareReport.driver_version`).
The image brings its own CANN, so the host's CANN toolkit, if any, does not matter: the driver does.
`choose()` takes the newest release the driver runs; when it runs none, the oldest, with the mismatch
spelled out (`CannChoice.mismatch`) for `provision doctor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CannRelease:
    cann: str  # as Ascend spells it (8.3.RC2); the image tag lower-cases it (cann8.3.rc2)
    torch: str  # known-good torch / torch_npu pair (ARCHITECTURE.md), bake's TORCH_VERSION
    torch_npu: str
    min_driver: str  # lowest Ascend HDK (NPU driver) Ascend pairs this CANN with
    source: str  # where that minimum comes from

    @property
    def tag(self) -> str:
        return self.cann.lower()


# Oldest first. Minimums are Ascend's own pairings (the conservative reading: a later, wider
# compatibility table exists for 8.5 / 9.0, but these are the pairs Ascend ships and tests).
CANN_RELEASES: tuple[CannRelease, ...] = (
    CannRelease(
        "8.3.RC2",
        "2.8.0",
        "2.8.0",
        "25.3.RC1",
        "CANN 8.3.RC1 release notes pair Ascend HDK 25.3.RC1 (Ascend's ascend-deployer CANN_8.3.RC1.json); "
        "vllm-ascend's install guide for 8.3.RC2 points at the same notes",
    ),
    CannRelease(
        "8.5.1",
        "2.9.0",
        "2.9.0",
        "25.5.0",
        "ascend-deployer CANN_8.5.0.json requires NPU 25.5.0; the CANN 9.0.1 notes pair 8.5.2 with 25.5.1+",
    ),
    CannRelease(
        "9.0.0",
        "2.10.0",
        "2.10.0",
        "25.5.1",
        "CANN 9.0.1 release notes: CANN 9.0.0 pairs with Ascend HDK 25.5.1, 25.5.2 and 26.0.RC1",
    ),
)
DEFAULT = CANN_RELEASES[0]
# Where the host's NPU driver states its version (mounted read-only into the NPU containers).
DRIVER_VERSION_INFO = "/usr/local/Ascend/driver/version.info"

_PART = re.compile(r"^(?:(rc|alpha|beta|b|t)?(\d+))$", re.IGNORECASE)


class DriverVersionError(ValueError):
    pass


def driver_key(version: str) -> tuple[int, ...]:
    """Order Ascend versions: 24.1.rc2.2 < 24.1.0 < 25.3.RC1 < 25.3.0 < 25.3.1 < 25.5.1.

    Major and minor, then a release-candidate part (`rcN`, `alphaN`, `betaN`) sorts before the final
    release's patch number of the same minor; later parts (`.2` of `rc2.2`) break ties.
    """
    parts = version.strip().strip('"').replace("-", ".").split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise DriverVersionError(
            f"driver version {version!r} is not MAJOR.MINOR[.PATCH|.RCn...] (e.g. 25.5.1, 25.3.RC1)"
        )
    key = [int(parts[0]), int(parts[1])]
    stage_given = False
    for piece in parts[2:]:
        match = _PART.match(piece)
        if not match:
            raise DriverVersionError(
                f"driver version {version!r}: part {piece!r} is neither a number nor RCn"
            )
        label, number = (match.group(1) or "").lower(), int(match.group(2))
        if not stage_given:
            # 0 = pre-release (alpha < beta < rc), 1 = final; then the number
            key += [{"alpha": 0, "t": 0, "beta": 1, "b": 1, "rc": 2}.get(label, 3), number]
            stage_given = True
        else:
            key.append(number)
    if not stage_given:
        key += [3, 0]
    return tuple(key)


@dataclass(frozen=True)
class CannChoice:
    release: CannRelease
    reason: str
    mismatch: str | None = None  # the driver runs no CANN image here: what is wrong
    fix: str | None = None


def runs(driver: str, release: CannRelease) -> bool:
    return driver_key(driver) >= driver_key(release.min_driver)


def choose(driver: str | None, releases: tuple[CannRelease, ...] = CANN_RELEASES) -> CannChoice:
    if not driver:
        return CannChoice(
            releases[0],
            f"no driver version found; CANN {releases[0].cann} (the default)",
            mismatch="no NPU driver version: /usr/local/Ascend/driver/version.info is missing or has no Version",
            fix="install the Ascend HDK driver package (Ascend-hdk-<chip>-npu-driver_<version>_linux-<arch>.run --full)",
        )
    try:
        fitting = [release for release in releases if runs(driver, release)]
    except DriverVersionError as exc:
        return CannChoice(
            releases[0],
            f"CANN {releases[0].cann} (the default)",
            mismatch=str(exc),
            fix="check /usr/local/Ascend/driver/version.info (its Version= line)",
        )
    if fitting:
        best = fitting[-1]
        return CannChoice(best, f"Ascend driver {driver} runs CANN {best.cann} (needs >= {best.min_driver})")
    oldest = releases[0]
    newest = releases[-1]
    needs = ", ".join(f"CANN {r.cann} needs >= {r.min_driver}" for r in releases)
    return CannChoice(
        oldest,
        f"CANN {oldest.cann}, the one needing the oldest driver",
        mismatch=f"Ascend driver {driver} is older than every CANN image needs ({needs}): "
        f"the CANN {oldest.cann} image will not run on it",
        fix=f"upgrade the Ascend HDK driver and firmware to {newest.min_driver} or newer "
        f"(Ascend-hdk-<chip>-npu-driver_{newest.min_driver}_linux-<arch>.run --full, then the "
        "firmware .run, reboot), then rerun provision env",
    )
