"""The NPU policy of the ltx-pipelines backend: what changes when the Device has no float64 or
complex dtypes (Ascend 910B under torch_npu), and what is refused there.

Import-safe (torch is imported inside the functions). The seed's eight NPU problems, mapped onto
1.0.0 and handled here or in compat.py:

| seed problem | in ltx-pipelines 1.0.0 | what this backend does |
| --- | --- | --- |
| 1 device detection CUDA-only | ``utils/helpers.py:36`` ``get_device()``, each pipeline's ``device=`` default | never called: `runner` passes the Device's torch device to every constructor |
| 1 ``cleanup_memory`` / ``torch.cuda.synchronize`` | every pipeline module, ``helpers.cleanup_memory`` | compat "device-sync": ``Device.synchronize()`` / ``Device.empty_cache()`` |
| 2 CUDA streams in layer streaming | absent in 1.0.0 | nothing |
| 3 vocoder ``autocast(float32)`` | absent in 1.0.0 (arrived in 1.1.0) | nothing |
| 4 OOM with Gemma + 22B on one card | the pipelines free Gemma before the transformer | `components` residency ("host" keeps a model in RAM between its phases) |
| 5 x1.5 upsampler shape mismatch | weights | weights.py lists the x2 upsampler only |
| 6 FP8 needs triton / TensorRT-LLM | ``quantization/`` | `check_quantization` refuses it off CUDA, before anything loads |
| 7 res2s float64 | ``utils/samplers.py:134,153-154,241,251-328`` (two-stage-hq only) | compat "res2s-float32" (float32 variant of that loop) |
| 8 MelSpectrogram complex64 | ``model/audio_vae/ops.py`` ``waveform_to_mel`` (audio-to-video, retake) | compat "mel-on-host" -> `mel_on_host` (``Device.run_complex_step``) |

Also checked: the transformer's ``frequencies_precision: float64`` RoPE (the 22B config sets it)
builds its frequency grid in numpy on the host and hands torch a float32 tensor
(``model/transformer/rope.py:70-86``), so nothing float64 reaches the device from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from i2v.request import InvalidRequestError

if TYPE_CHECKING:
    from i2v.devices import Device

Quantization = Literal["fp8-cast", "fp8-scaled-mm"]
QUANTIZATIONS: tuple[Quantization, ...] = ("fp8-cast", "fp8-scaled-mm")


def check_quantization(quantization: str | None, device_kind: str) -> None:
    """Refuse an FP8 policy where its kernels do not exist, naming why (before anything loads).

    ``fp8-scaled-mm`` calls TensorRT-LLM's CUDA kernels; ``fp8-cast`` fuses LoRAs with a triton
    kernel on CUDA (``loader/fuse_loras.py:138``, ``quantization/fp8_cast.py``) and upcasts per
    matmul. Neither has an Ascend or CPU path: run bf16 there (22B bf16 fits a 64 GB 910B).
    """
    if quantization is None:
        return
    if quantization not in QUANTIZATIONS:
        raise InvalidRequestError("quantization", quantization, f"one of {', '.join(QUANTIZATIONS)} or none")
    if device_kind != "cuda":
        raise InvalidRequestError(
            "quantization",
            quantization,
            f"FP8 in ltx-core 1.0.0 needs CUDA (triton / TensorRT-LLM kernels); the {device_kind} device has "
            "none: leave quantization unset (bf16)",
        )


class _HostComplexStep:
    """Calls `module` (a MelSpectrogram) through ``Device.run_complex_step``: on the CPU, in a
    declared host section, with the real-valued result moved back to the input's device."""

    def __init__(self, module: Any, device: Device) -> None:
        self.module, self.device = module, device

    def __call__(self, waveform: Any) -> Any:
        return self.device.run_complex_step(self.module, waveform)


@contextlib.contextmanager
def mel_on_host(processor: Any, device: Device) -> Iterator[None]:
    """For one ``AudioProcessor.waveform_to_mel`` call: its MelSpectrogram (window and filter bank
    included) on the CPU, called as a host complex step; put back as it was afterwards."""
    transform = processor.mel_transform
    home = next(iter(transform.buffers()), None)
    home_device = home.device if home is not None else None
    transform.to("cpu")
    # An instance attribute shadows the registered submodule (nn.Module.__getattr__ is only asked
    # when normal lookup fails), so state dicts and .to() still see the MelSpectrogram itself.
    object.__setattr__(processor, "mel_transform", _HostComplexStep(transform, device))
    try:
        yield
    finally:
        object.__delattr__(processor, "mel_transform")
        if home_device is not None:
            transform.to(home_device)
