"""The catalogue's memory coefficients: fitted data (`memory_fits.json`) plus the device factors that fake
tensors cannot measure. Torch-free and import-safe.

`memory_fits.json` is written by `python -m i2v.memory.fit` (its ``source`` names the command, date
and versions; its ``measurements`` are the points the fits came from). A model without an entry
there gets the conservative estimate below and says so in its ``source``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from i2v.memory.model import DeviceFactor, PhaseFit, PhaseFits

FITS_FILE = Path(__file__).with_name("memory_fits.json")

# A real GPU's decode on I2VGen-XL's conv VAE: max_memory_allocated on an H100 (diffusers 0.42.1,
# torch 2.11) against the fake-tensor peak of the same decode phase (weights + activations): 1.33 at
# 512x512x16 decoding 16 frames at once (14.2 GiB vs 10.6), fp16 and fp32 alike (28.4 vs 21.3), 1.24 at
# 704x1280x16 (31.4 vs 25.3); ARCHITECTURE.md's anchors. cuDNN's convolution workspaces are the likely
# cause; the larger ratio is kept.
H100_CONV_VAE_DECODE = DeviceFactor(
    1.33, "H100 max_memory_allocated / fake-tensor peak, I2VGen-XL decode 16 frames at once (ARCHITECTURE.md)"
)
DEVICE_FACTORS: dict[str, dict[str, DeviceFactor]] = {
    "i2vgen-xl": {"decode": H100_CONV_VAE_DECODE},
    # SVD decodes with the same SD-style 2D conv decoder blocks (plus temporal mixing): the I2VGen-XL
    # factor is assumed, not measured on a GPU.
    "svd-xt": {
        "decode": DeviceFactor(1.33, "assumed from I2VGen-XL's H100 decode (same conv decoder blocks)")
    },
}

# Used only where memory_fits.json has no entry: generous per-token and per-pixel costs.
ESTIMATE = PhaseFits(
    fits={
        "text": PhaseFit(base_mib=512.0),
        "condition": PhaseFit(base_mib=512.0, per_mpixel_frame=300.0),
        "denoise": PhaseFit(base_mib=512.0, per_mtoken=20_000.0),
        "decode": PhaseFit(base_mib=1024.0, per_mpixel_frame=300.0, per_mpixel_decoded=2_000.0),
    },
    source="estimate: not measured (no entry in i2v/catalogue/memory_fits.json)",
)


@cache
def _file() -> dict:
    try:
        return json.loads(FITS_FILE.read_text(encoding="utf-8")).get("models", {})
    except FileNotFoundError:
        return {}


def measured(model_id: str) -> PhaseFits:
    """The fitted phases of ``model_id`` with its device factors; the estimate where none was measured."""
    entries = _file()
    entry = entries.get(model_id)
    if entry is not None and "same_as" in entry:
        entry = entries.get(entry["same_as"])
    factors = DEVICE_FACTORS.get(model_id, {})
    if entry is None:
        return PhaseFits(ESTIMATE.fits, factors, source=ESTIMATE.source)
    src = entry["source"]
    source = (
        f"{src['command']} on {src['date']} (torch {src['torch']}, diffusers {src['diffusers']}, "
        f"transformers {src['transformers']}; {src['machine']})"
    )
    fits = {name: PhaseFit.from_dict(values) for name, values in entry["fits"].items()}
    fp8 = entry.get("fp8", {})
    return PhaseFits(
        fits,
        factors,
        dict(fp8.get("weights_mib", {})),
        float(fp8.get("upcast_mib", 0.0)),
        source=source,
    )


__all__ = ["DEVICE_FACTORS", "ESTIMATE", "FITS_FILE", "measured"]
