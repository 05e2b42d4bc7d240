"""Measure a request's peak memory per phase on the full-size pipeline, with fake tensors, on the CPU.

`FakePipeline(spec, dtype)` builds the catalogue's full-size architecture with every model's weights as
`FakeTensor`s (shapes, dtypes and a CPU device, no storage: 14 B parameters cost nothing), the
schedulers, tokenizers and processors real. `measure()` then runs the request through the family
adapter's own call path for one denoising step under a `StorageTracker`: real preprocessing, real
scheduler, every op of the models dispatched on fake tensors (no arithmetic), and reports the peak of
live storage above the weights in each phase:

- ``text``: ``pipe.encode_prompt`` (LTX-2: Gemma's stacked hidden states) and the text connectors;
- ``condition``: the image encoder and ``vae.encode`` of the conditioning frame(s);
- ``denoise``: the denoiser forwards (one step: CFG as the family runs it, batch or passes);
- ``decode``: ``vae.decode`` (and LTX-2's audio VAE and vocoder);
- ``other``: anything between them (latent preparation, scheduler, post-processing).

On the CPU every attention call goes to ``_scaled_dot_product_flash_attention_for_cpu`` (output and an
fp32 log-sum-exp, as CUDA's flash kernels), so no N^2 matrix appears; the kernels seen are reported.
What fake tensors cannot see (cuDNN workspaces, allocator rounding) the catalogue keeps as explicit
factors. The prompt is encoded once per `FakePipeline` and reused (its result does not depend on the
video size), so later shapes cost only their own phases.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from i2v.catalogue.spec import ModelSpec
from i2v.families import RunContext, adapter_for, resolve_class
from i2v.levers import cast_weights_fp8, chunk_feed_forward, unchunk
from i2v.memory.tracker import MIB, StorageTracker
from i2v.request import GenerationRequest, resolve

PHASES = ("text", "condition", "denoise", "decode", "other")
# Two steps: every step peaks alike, but LTX's flow-match schedule is NaN with one step (its terminal
# shift divides by zero), and two steps run both of Wan 2.2 A14B's experts (t ~ 999 and ~ 750).
STEPS = 2
_REAL_KINDS = ("tokenizer", "scheduler", "processor")
# Which phase a component's forward belongs to, by catalogue kind (the VAE is split by method).
_PHASE_OF_KIND = {
    "text_encoder": "text",
    "connector": "text",
    "image_encoder": "condition",
    "denoiser": "denoise",
    "vocoder": "decode",
    "upsampler": "upsample",
}


@dataclass(frozen=True)
class Setting:
    """The levers a measurement runs with (the planner's levers, as the runtime applies them)."""

    decode_chunk: int | None = None  # None: the pipeline's own default
    vae_tiling: bool = False
    forward_chunks: int = 0  # 0: off; n: every feed-forward in at most n pieces (i2v.levers)


@dataclass(frozen=True)
class Measurement:
    model: str
    height: int
    width: int
    frames: int
    dtype: str
    setting: Setting
    fp8: bool
    weights_mib: float
    phases: dict[str, float]  # peak MiB above the weights while the phase ran
    denoiser_calls: int  # calls the pipeline made (all steps, all guidance passes)
    denoiser_forwards: int  # distinct calls dispatched (`_memoise_forward`)
    ops_per_forward: float
    seconds_per_forward: float
    attention_kernels: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def peak_mib(self) -> float:
        return self.weights_mib + max(self.phases.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def _assignable_fake_parameters() -> Iterator[None]:
    """Let `nn.Module.to()` convert fake weights (SVD upcasts its VAE to fp32; layerwise casting moves
    every layer between float8 and bf16). torch swaps a FakeTensor parameter in place
    (`torch.utils.swap_tensors`), which refuses tensors the fake mode's converter holds a weak
    reference to; where it refuses, the parameter takes the converted tensor as its ``.data``, which is
    what `.to()` does for real tensors (the old storage is freed once nothing else holds it)."""
    original = torch.utils.swap_tensors

    def swap(t1: torch.Tensor, t2: torch.Tensor) -> None:
        try:
            original(t1, t2)
        except RuntimeError:
            t1.data = t2.detach()

    torch.utils.swap_tensors = swap
    try:
        yield
    finally:
        torch.utils.swap_tensors = original


def _fake_weights(
    model: torch.nn.Module, fake_mode: FakeTensorMode, memo: dict[int, tuple[torch.Tensor, torch.Tensor]]
) -> Any:
    """Replace ``model``'s meta parameters and buffers with fake CPU tensors (tied ones stay tied)."""

    def fake(tensor: torch.Tensor) -> torch.Tensor:
        # memo holds the meta tensor too: its id must not be reused while the build runs
        if id(tensor) not in memo:
            with fake_mode:
                made = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device="cpu")
            memo[id(tensor)] = (tensor, made)
        return memo[id(tensor)][1]

    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is not None:
                if id(param) not in memo:
                    with fake_mode:
                        made = torch.nn.Parameter(fake(param.data), requires_grad=False)
                    memo[id(param)] = (param, made)
                module._parameters[name] = memo[id(param)][1]
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                module._buffers[name] = fake(buffer)
    return model


class FakePipeline:
    """One full-size pipeline with fake weights, measured request after request.

    ``fp8``: the denoisers' weights stored in float8 e4m3 with layerwise casting (`i2v.levers`), as the
    runtime's FP8 rung runs them; the weights and the per-layer upcast are measured, not assumed.
    """

    def __init__(self, spec: ModelSpec, dtype: str | None = None, fp8: bool = False):
        from i2v.catalogue.architectures import pipeline_config_for
        from i2v.tiny.build import instantiate

        self.spec = spec
        self.adapter = adapter_for(spec)
        self.dtype = dtype or spec.preferred_dtype
        self.fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        torch_dtype = getattr(torch, self.dtype)
        parts: dict[str, Any] = {}
        memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for component in spec.architecture.components:
            if component.kind in _REAL_KINDS:
                parts[component.name] = instantiate(component)
                continue
            # Built on the meta device (no weight initialisation runs: some initialisers read values),
            # then every parameter and buffer becomes a fake CPU tensor of the same shape and dtype.
            with _default_dtype(torch_dtype):
                model = instantiate(component, "meta")
            parts[component.name] = _fake_weights(model, self.fake_mode, memo)
        cls = resolve_class(spec.architecture.pipeline_cls)
        self.pipe = self.adapter.prepare(cls(**parts, **pipeline_config_for(spec.id)))
        self.fp8 = fp8
        if fp8:
            with _assignable_fake_parameters():
                for model in self.adapter.denoisers(self.pipe):
                    cast_weights_fp8(model, torch_dtype)
        self.tracker = StorageTracker()
        self.kinds = {c.name: c.kind for c in spec.architecture.components}
        modules = [m for m in self.pipe.components.values() if isinstance(m, torch.nn.Module)]
        self.tracker.adopt([list(m.parameters()) + list(m.buffers()) for m in modules])
        self.weights_bytes = self.tracker.live_bytes
        self._prompt: Any = None
        self._forwards: dict[tuple, Any] = {}
        self._calls = 0
        self._text_mib = 0.0
        self._hook_phases()

    def _hook_phases(self) -> None:
        track, pipe = self.tracker, self.pipe
        encode_prompt = getattr(pipe, "encode_prompt", None)

        def cached_prompt(*args: Any, **kwargs: Any) -> Any:
            # The prompt's embeddings do not depend on the video size: encode once, measure once.
            if self._prompt is None:
                with track.phase("text"):
                    self._prompt = encode_prompt(*args, **kwargs)
            return self._prompt

        if encode_prompt is not None:  # SVD takes no prompt
            object.__setattr__(pipe, "encode_prompt", cached_prompt)
        for name, kind in self.kinds.items():
            module = getattr(pipe, name, None)
            if module is None or kind in _REAL_KINDS:
                continue
            if kind == "vae":
                track.wrap(module, "encode", "condition")
                track.wrap(module, "decode", "decode")
            elif kind == "audio_vae":
                track.wrap(module, "decode", "decode")
            elif kind == "denoiser":
                self._memoise_forward(module)
            elif kind in _PHASE_OF_KIND:
                track.wrap(module, "forward", _PHASE_OF_KIND[kind])

    def _memoise_forward(self, model: torch.nn.Module) -> None:
        """Run each distinct denoiser call (input shapes and dtypes) once per measurement: every step,
        and both of Wan's CFG passes, have the same shapes and so the same peak. A repeat returns the
        first call's output (a latent-sized tensor) without dispatching the forward again."""
        forward, track = model.forward, self.tracker

        def once(*args: Any, **kwargs: Any) -> Any:
            self._calls += 1
            key = (id(model), _signature(args), _signature(sorted(kwargs.items())))
            if key not in self._forwards:
                with track.phase("denoise"):
                    self._forwards[key] = forward(*args, **kwargs)
            return self._forwards[key]

        object.__setattr__(model, "forward", once)

    def request(self, height: int, width: int, frames: int) -> GenerationRequest:
        return resolve(
            self.spec,
            "standard",
            height=height,
            width=width,
            frames=frames,
            steps=STEPS,
            prompt="a ball rolls",
        )

    def measure(
        self, height: int, width: int, frames: int, setting: Setting = Setting(), request: Any = None
    ) -> Measurement:
        """`STEPS` steps of ``height x width x frames`` with ``setting``; peaks per phase above the weights."""
        from i2v.cli import demo_image

        request = request or self.request(height, width, frames)
        handles = self._apply(setting)
        image = demo_image(width, height)
        ctx = RunContext(_HostDevice(), torch.Generator().manual_seed(0), None, setting.decode_chunk)
        ctx.output_type = "pt"
        track = self.tracker
        track.phases = {}
        self._forwards.clear()
        self._calls = 0
        first_prompt = self._prompt is None
        started = time.perf_counter()
        try:
            with track, torch.no_grad(), _assignable_fake_parameters():
                result = self.adapter.call(self.pipe, self.spec, request, image, ctx)
            del result
            self._forwards.clear()
        finally:
            self._undo(setting, handles)
        seconds = time.perf_counter() - started
        gc.collect()
        if first_prompt:
            self._text_mib = track.stats("text").peak_bytes / MIB - self.weights_bytes / MIB
        weights_mib = self.weights_bytes / MIB
        phases = {
            name: max(stats.peak_bytes / MIB - weights_mib, 0.0)
            for name, stats in track.phases.items()
            if name != "text" and stats.ops
        }
        phases["text"] = max(self._text_mib, 0.0)
        denoise = track.stats("denoise")
        forwards = max(denoise.calls, 1)
        kernels = tuple(sorted(n for n in track.op_names if "attention" in n))
        return Measurement(
            model=self.spec.id,
            height=height,
            width=width,
            frames=frames,
            dtype=self.dtype,
            setting=setting,
            fp8=self.fp8,
            weights_mib=round(weights_mib, 1),
            phases={k: round(v, 1) for k, v in sorted(phases.items())},
            denoiser_calls=self._calls,
            denoiser_forwards=denoise.calls,
            ops_per_forward=denoise.ops / forwards,
            seconds_per_forward=round(denoise.seconds / forwards, 3),
            attention_kernels=kernels,
            seconds=round(seconds, 1),
        )

    def _apply(self, setting: Setting) -> list[Any]:
        handles: list[Any] = []
        if setting.vae_tiling:
            self.pipe.vae.enable_tiling()
        if setting.forward_chunks:
            for model in self.adapter.denoisers(self.pipe):
                handles += chunk_feed_forward(model, setting.forward_chunks)
        return handles

    def _undo(self, setting: Setting, handles: list[Any]) -> None:
        if setting.vae_tiling:
            self.pipe.vae.disable_tiling()
        unchunk(handles)


def _signature(value: Any) -> Any:
    """Shapes and dtypes of the tensors in ``value``, other leaves as they are (hashable)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype))
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _signature(v)) for k, v in sorted(value.items()))
    try:
        hash(value)
    except TypeError:
        return repr(type(value))
    return value


class _HostDevice:
    """The device a fake pipeline runs on, as far as the adapter's call path asks."""

    kind = "cpu"

    def torch_device(self, index: int = 0) -> torch.device:
        return torch.device("cpu")


__all__ = ["PHASES", "FakePipeline", "Measurement", "Setting"]
