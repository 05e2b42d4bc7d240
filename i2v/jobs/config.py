"""Settings of the video service on top of `i2v.settings.Settings` (same I2V_ prefix, same `.env`).

Kept beside the job store rather than in the shared model because only the service (API, workers,
supervisor) reads them; every field is still an environment variable, as in TGI's launcher.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from i2v.settings import DEFAULT_HOME, Settings

MIB = 1024 * 1024


class ServiceSettings(Settings):
    max_upload_bytes: int = Field(
        20 * MIB,
        ge=1024,
        description="Largest accepted upload in bytes: the image and a mode's other inputs together "
        "(decoded, when sent as data: URLs); more gets 413.",
    )
    max_image_pixels: int = Field(
        4096 * 4096,
        ge=64 * 64,
        description="Largest accepted image in pixels (read from the header, before decoding).",
    )
    max_prompt_chars: int = Field(2000, ge=1, description="Longest accepted prompt / negative prompt.")
    lease_s: float = Field(
        30.0,
        gt=0.5,
        description="A claimed job's lease; workers renew it every third of this. A job whose lease "
        "ran out (its worker died) is requeued.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Runs a job gets when its workers keep dying; after that it fails with worker_lost.",
    )
    drain_grace_s: float = Field(
        60.0, ge=0, description="On SIGTERM, how long a running job may take to finish before it is requeued."
    )
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS; empty: CORS off.")
    spawn_workers: bool = Field(True, description="`i2v serve` starts and supervises the workers itself.")
    poll_interval_s: float = Field(0.2, gt=0, description="How often an idle worker looks for a queued job.")
    loras_dir: Path = Field(
        DEFAULT_HOME / "loras",
        description="Folder of LoRA files (.safetensors) requests may name (`loras`, GET /v1/loras); "
        "clients name files in it, never paths.",
    )

    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.outputs_path() / 'jobs.db'}"

    def outputs_path(self) -> Path:
        return Path(self.outputs_dir).expanduser().resolve()

    def loras_path(self) -> Path:
        return Path(self.loras_dir).expanduser().resolve()

    def key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    def cors_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def load_service_settings(**overrides: object) -> ServiceSettings:
    return ServiceSettings(**overrides)  # type: ignore[arg-type]
