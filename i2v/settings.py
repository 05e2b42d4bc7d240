"""One settings model (prefix I2V_): what `provision env` writes and what the runtime reads.

Read from the environment, then from `.env` in the working directory (bare-metal runs), so the
same file drives `docker compose` (via `env_file`) and `i2v serve`. Every field has a
description; `provision env` writes them with those descriptions as comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from i2v.catalogue.models import DEFAULT_MODEL

DEFAULT_HOME = Path.home() / ".cache" / "i2v-deploy"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="I2V_", env_file=".env", extra="ignore", frozen=True)

    device: Literal["auto", "cuda", "npu", "cpu"] = Field(
        "auto", description="Compute backend; auto picks npu, then cuda, then cpu."
    )
    visible_devices: str = Field(
        "", description="Device ids this deployment may use (comma separated, host numbering); empty: all."
    )
    model: str = Field(DEFAULT_MODEL, description="Catalogue id of the model to serve (`i2v models`).")
    preset: Literal["fast", "standard", "hq"] = Field(
        "standard", description="Default preset for requests that name none."
    )
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="Compute dtype; auto: bf16 where supported, fp16 on pre-Ampere/310P, fp32 on CPU."
    )
    strategy: Literal["auto", "resident", "model-offload", "group-offload", "sequential-offload"] = Field(
        "auto", description="Memory strategy; auto walks the planner's ladder from all-resident down."
    )
    memory_headroom: float = Field(
        0.9, gt=0.1, le=1.0, description="Fraction of free device memory a plan may use."
    )
    workers_per_device: int = Field(1, ge=1, le=8, description="Worker processes per device.")
    cards_per_job: Literal["auto", "1", "2", "4", "8"] = Field(
        "auto",
        description="Cards one job runs on (a worker group: CFG parallel, then Ulysses/ring context "
        "parallel); auto: as many as the model can use while each card keeps 4096 latent tokens "
        "(latency), else 1 (throughput); on the CPU always 1 unless set.",
    )
    collective_timeout_s: float = Field(
        120.0,
        gt=0,
        description="How long a card of a group waits for the others in one collective before the group "
        "counts as broken (restarted, its job requeued); never a hang.",
    )
    node_name: str = Field(
        "", description="This host's name in the job store's worker rows; empty: the machine's host name."
    )
    host: str = Field("0.0.0.0", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server listens on.")
    models_dir: Path = Field(
        DEFAULT_HOME / "models", description="Where model weights live (one dir per model)."
    )
    outputs_dir: Path = Field(DEFAULT_HOME / "outputs", description="Where finished videos are written.")
    database_url: str = Field(
        "", description="SQLAlchemy URL of the job store; empty: a SQLite file in outputs_dir."
    )
    offline: bool = Field(False, description="Never touch the network; load only what is in models_dir.")
    queue_size: int = Field(16, ge=1, description="Jobs that may wait; more get 429 with Retry-After.")
    api_keys: str = Field("", description="Comma-separated bearer keys; empty: no auth.")
    compile: Literal["off", "auto"] = Field(
        "off",
        description="torch.compile the denoiser where the plan allows (CUDA, all resident); costs "
        "tens of seconds once per shape, so off until `i2v bench` shows the gain on your device.",
    )
    log_every_steps: int = Field(10, ge=1, description="Log device memory every N denoising steps.")

    def host_name(self) -> str:
        """`node_name`, else the machine's host name (what worker rows and ids say)."""
        import socket

        return self.node_name or socket.gethostname()

    @field_validator("visible_devices")
    @classmethod
    def _ids(cls, value: str) -> str:
        ids = [v.strip() for v in value.split(",") if v.strip()]
        for v in ids:
            if not v.isdigit():
                raise ValueError(f"visible_devices must be comma-separated integers, got {value!r}")
        return ",".join(ids)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
