"""The ltx-pipelines mode table, weight lists and memory phases against the pinned 1.0.0 package.

The table is data we wrote by reading the package; these tests read the package again (its
classes, constructor signatures, sigma schedules, CLI defaults) so a wrong row fails here.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

from i2v.families.ltx2_official import MODES, arch, files_for, phases
from i2v.families.ltx2_official.modes import DISTILLED_STEPS, STAGE_2_STEPS
from i2v.families.ltx2_official.weights import ModelFiles


def test_package_import_is_torch_free():
    code = (
        "import sys; import i2v.families.ltx2_official as p; from i2v.families.ltx2_official import "
        "validate, phases, arch, weights, npu, scope, media; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch', 'ltx_core', 'ltx_pipelines', 'torchaudio')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", list(MODES))
def test_mode_names_a_real_pipeline_class(name):
    spec = MODES[name]
    cls = getattr(importlib.import_module(f"ltx_pipelines.{spec.module}"), spec.cls)
    params = inspect.signature(cls.__init__).parameters
    assert "device" in params and "quantization" in params
    # The checkpoint a mode's first stage uses is the one its constructor takes.
    takes = "distilled_checkpoint_path" if spec.stages[0].checkpoint == "distilled" else "checkpoint_path"
    assert takes in params
    assert ("spatial_upsampler_path" in params) == spec.two_stage
    assert ("distilled_lora" in params) == ("distilled-lora" in spec.weights)
    call = inspect.signature(cls.__call__).parameters
    assert ("num_inference_steps" in call) == spec.takes_steps
    assert ("negative_prompt" in call) == spec.takes_negative_prompt


def test_fixed_schedules_match_the_package():
    from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

    assert DISTILLED_STEPS == len(DISTILLED_SIGMA_VALUES) - 1
    assert STAGE_2_STEPS == len(STAGE_2_DISTILLED_SIGMA_VALUES) - 1
    assert MODES["two-stage"].total_steps(30) == 30 + STAGE_2_STEPS
    assert MODES["distilled"].total_steps(30) == DISTILLED_STEPS + STAGE_2_STEPS


def test_defaults_match_the_package_cli():
    from ltx_pipelines.utils.args import (
        default_1_stage_arg_parser,
        default_2_stage_arg_parser,
        hq_2_stage_arg_parser,
    )

    def cli(parser):
        a = parser.parse_args(
            [
                "--checkpoint-path",
                "c",
                "--gemma-root",
                "g",
                "--prompt",
                "p",
                "--output-path",
                "o",
                *(["--distilled-lora", "l", "--spatial-upsampler-path", "u"] if parser is not one else []),
            ]
        )
        return (
            a.height,
            a.width,
            a.num_frames,
            a.frame_rate,
            a.num_inference_steps,
            a.video_cfg_guidance_scale,
        )

    one = default_1_stage_arg_parser()
    for name, parser in (
        ("one-stage", one),
        ("two-stage", default_2_stage_arg_parser()),
        ("two-stage-hq", hq_2_stage_arg_parser()),
    ):
        d = MODES[name].defaults
        assert cli(parser) == (d.height, d.width, d.frames, d.fps, d.steps, d.video_cfg), name


def test_every_mode_has_its_weight_files_and_two_stage_modes_the_x2_upsampler():
    for name, spec in MODES.items():
        roles = [f.role for f in files_for(name)]
        assert "gemma" in roles and ("dev" in roles or "distilled" in roles), name
        assert ("upsampler-x2" in roles) == spec.two_stage, name
        assert all(
            f.repo in ("Lightricks/LTX-2.3", "google/gemma-3-12b-it-qat-q4_0-unquantized")
            for f in files_for(name)
        )
    assert [f.filename for f in files_for("distilled")] == [
        "ltx-2.3-22b-distilled-1.1.safetensors",
        "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
        None,
    ]


def test_model_files_require_names_what_is_missing(tmp_path):
    (tmp_path / "LTX-2.3").mkdir()
    (tmp_path / "LTX-2.3" / "ltx-2.3-22b-dev.safetensors").write_bytes(b"")
    files = ModelFiles.locate(tmp_path)
    assert files.dev is not None and files.gemma_root is None
    with pytest.raises(
        FileNotFoundError, match="ltx-2.3-22b-distilled-lora-384-1.1.safetensors.*google/gemma"
    ):
        files.require("two-stage")


def test_phases_never_hold_two_big_models_and_cover_the_mode():
    for name, spec in MODES.items():
        for phase in phases.PHASES[name]:
            big = phase.parts & {"text_encoder", "embeddings_processor", "transformer"}
            assert len(big) <= 1, (name, phase)
            assert ("transformer" in phase.parts) == (phase.stage is not None), (name, phase)
        parts = phases.parts_of(name)
        assert ("upsampler" in parts) == spec.two_stage
        assert ("audio_encoder" in parts) == (name in ("audio-to-video", "retake"))
    assert phases.transformer_variants("two-stage") == 2  # dev, and dev + distilled LoRA 0.8
    assert phases.transformer_variants("distilled") == 1  # one transformer for both stages
    assert phases.transformer_variants("ic-lora") == 2  # IC-LoRA fused into stage 1 only


def test_peak_bytes_follow_the_phases():
    b = arch.bf16_bytes
    # ltx-pipelines frees Gemma (24 GB) before building the transformer (38 GB).
    assert phases.upstream_peak_bytes("one-stage") == b("transformer")
    # distilled keeps its transformer and video encoder through the upsample.
    assert phases.upstream_peak_bytes("distilled") == b("transformer") + b("video_encoder") + b("upsampler")
    warm_two = phases.warm_device_bytes("two-stage", big_on_host=False)
    # A second transformer variant (LoRA-fused stage 2) and the upsampler are what two-stage adds.
    assert warm_two - phases.warm_device_bytes("one-stage", big_on_host=False) == b("transformer") + b(
        "upsampler"
    )
    # With the big models in host RAM the device keeps one transformer and the small models.
    assert phases.warm_device_bytes("two-stage", big_on_host=True) == (
        warm_two - b("text_encoder") - b("embeddings_processor") - b("transformer")
    )
