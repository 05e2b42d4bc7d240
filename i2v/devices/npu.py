"""Huawei Ascend NPUs through torch_npu (`torch.npu.*`), and the NPU precision policy for pipelines.

Import-safe: torch_npu is imported only inside `NpuDevice` methods (`_npu()`), never at module
import, because importing torch_npu initialises the CANN runtime.

Precision policy (Ascend 910B, torch_npu 2.8-2.10): no float64 on most kernels, no complex64,
autocast only to float16/bfloat16. What that means for diffusers 0.42.1's LTX-2, spot by spot
(paths under diffusers/):

- models/transformers/transformer_ltx2.py:1029: `LTX2AudioVideoRotaryPosEmbed.forward` builds
  the RoPE frequency grid with `torch.linspace(..., dtype=float64, device=device)` when
  `self.double_precision` (the config's `rope_double_precision=True`, line 1176, handed to the
  four RoPE modules `rope`, `audio_rope`, `cross_attn_rope`, `cross_attn_audio_rope` at lines
  1274-1320). The flag is read at every forward, so an already-built model is fixed by setting
  `double_precision = False` on those modules; `register_to_config` keeps the saved config
  truthful. Handled by `configure_pipeline_for_device`.
- pipelines/ltx2/connectors.py:125: the text connectors' `LTX2RotaryPosEmbed1d` does the same
  (`rope_double_precision`, line 358, passed to `video_connector.rope` / `audio_connector.rope`).
  Same fix, on `pipe.connectors`.
- models/autoencoders/ltx2_diffusion_decoder.py:120: already asks
  `maybe_adjust_dtype_for_device(float64, device)`, which gives float32 on "npu"
  (utils/torch_utils.py:41). Nothing to do.
- pipelines/ltx2/vocoder.py:437-448: the vocoder's `CausalSTFT` is a conv1d against precomputed
  DFT bases and `atan2` in float32: no complex tensors, and no autocast(float32) in diffusers'
  vocoder (the seed's autocast problem is in Lightricks' ltx-core, not here). Nothing to do.
- pipelines/ltx2/pipeline_ltx2*.py (`np.linspace` sigmas, float64 numpy): the scheduler casts them
  with `.to(dtype=float32, device=device)` (schedulers/scheduling_flow_match_euler_discrete.py:372)
  before they reach the device. Nothing to do.
- Our own complex steps (mel spectrograms for audio conditioning) go through
  `Device.run_complex_step`, which runs them on the CPU.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, ClassVar

from .base import (
    UNET_FAMILIES,
    Device,
    DeviceUnavailableError,
    choose_dtype,
    dtype_name,
    is_transformer_family,
)

if TYPE_CHECKING:
    import torch

NPU_ATTENTION_BACKEND = "_native_npu"
# diffusers classes that read a `double_precision` flag at forward time (see the module docstring).
_FLOAT64_ROPE_CLASSES = frozenset({"LTX2AudioVideoRotaryPosEmbed", "LTX2RotaryPosEmbed1d"})
_LTX2_COMPONENTS = ("transformer", "transformer_2", "connectors")


def torch_npu_installed() -> bool:
    """Whether torch_npu can be imported, without importing it."""
    try:
        return importlib.util.find_spec("torch_npu") is not None
    except ValueError:  # in sys.modules with no __spec__
        return True


class NpuDevice(Device):
    kind: ClassVar[str] = "npu"
    visible_devices_env: ClassVar[str | None] = "ASCEND_RT_VISIBLE_DEVICES"
    supports_streams: ClassVar[bool] = False
    complex_on_cpu: ClassVar[bool] = True
    allow_float64: ClassVar[bool] = False
    allow_complex: ClassVar[bool] = False
    autocast_dtype_names: ClassVar[tuple[str, ...]] = ("float16", "bfloat16")
    oom_markers: ClassVar[tuple[str, ...]] = ("NPU out of memory",)

    @staticmethod
    def _npu() -> Any:
        """`torch.npu`, importing torch_npu first (it registers the namespace and the "npu" device)."""
        import torch

        try:
            import torch_npu  # noqa: F401
        except (ImportError, OSError) as exc:  # OSError: CANN libraries not on the loader path
            raise DeviceUnavailableError(
                f"torch_npu is installed but does not import ({exc}); source "
                f"/usr/local/Ascend/ascend-toolkit/set_env.sh (the CANN images' entrypoint does), "
                f"or set I2V_DEVICE=cpu"
            ) from exc
        return torch.npu

    def is_available(self) -> bool:
        return torch_npu_installed() and bool(self._npu().is_available())

    def device_count(self) -> int:
        return int(self._npu().device_count())

    def torch_device(self, index: int = 0) -> torch.device:
        import torch

        self._npu()
        return torch.device("npu", index)

    def preferred_dtype_name(self) -> str:
        return choose_dtype("npu", bf16_supported=bool(self._npu().is_bf16_supported()))

    def unsupported_dtype_reason(self, dtype: object) -> str | None:
        if dtype_name(dtype) == "bfloat16" and not self._npu().is_bf16_supported():
            return "bfloat16 is not supported on this NPU (310P and older); use float16 instead"
        return super().unsupported_dtype_reason(dtype)

    def mem_get_info(self, index: int = 0) -> tuple[int, int]:
        free_bytes, total_bytes = self._npu().mem_get_info(index)
        return int(free_bytes), int(total_bytes)

    def max_memory_allocated(self, index: int = 0) -> int:
        return int(self._npu().max_memory_allocated(index))

    def reset_peak_memory_stats(self, index: int = 0) -> None:
        self._npu().reset_peak_memory_stats(index)

    def synchronize(self, index: int = 0) -> None:
        self._npu().synchronize(index)

    def empty_cache(self) -> None:
        self._npu().empty_cache()

    def attention_backend(self, family: str) -> str | None:
        return NPU_ATTENTION_BACKEND if is_transformer_family(family) else None

    def uses_npu_flash_attention(self, family: str) -> bool:
        return family.lower() in UNET_FAMILIES


def configure_pipeline_for_device(pipe: Any, family: str, device: Device | None = None) -> tuple[str, ...]:
    """Make a built pipeline (or a bare model) follow `device`'s precision policy; return what changed.

    Today that is one thing: LTX-2's float64 RoPE (transformer and text connectors) is switched to
    float32 where the device has no float64. Other families build nothing in float64 or complex
    on the device in diffusers 0.42.1, and their pipelines are returned untouched.
    """
    if device is None:
        from . import select_device

        device = select_device()
    if device.allow_float64 or family.lower() != "ltx-2":
        return ()
    return tuple(_disable_float64_rope(pipe))


def _disable_float64_rope(pipe: Any) -> list[str]:
    components = [(name, getattr(pipe, name, None)) for name in _LTX2_COMPONENTS]
    components = [(name, c) for name, c in components if c is not None] or [(type(pipe).__name__, pipe)]
    changed = []
    for name, component in components:
        if not hasattr(component, "named_modules"):
            continue
        for sub_name, module in component.named_modules():
            if type(module).__name__ in _FLOAT64_ROPE_CLASSES and getattr(module, "double_precision", False):
                module.double_precision = False
                changed.append(f"{name}.{sub_name}.double_precision=False")
        config = getattr(component, "config", None)
        if config is not None and config.get("rope_double_precision", False):
            component.register_to_config(rope_double_precision=False)
            changed.append(f"{name}.config.rope_double_precision=False")
    return changed
