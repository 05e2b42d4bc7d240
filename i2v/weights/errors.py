"""What can go wrong with weights, one class each, every message naming the model, file or repo.

`exit_code` is the `i2v fetch` exit status for each (the CLI maps exceptions to codes in one place).
"""

from __future__ import annotations

from pathlib import Path


class WeightsError(RuntimeError):
    """Base class: weights could not be fetched or are not fit to load."""

    exit_code = 9


class WeightsCorruptError(WeightsError):
    """A file differs from its manifest (or from what the hub listed): truncated, grown or altered."""

    exit_code = 6

    def __init__(self, folder: Path, path: str, detail: str, fix: str = ""):
        self.folder = Path(folder)
        self.path = path
        super().__init__(f"`{path}` in {self.folder} {detail}{'; ' + fix if fix else ''}")


class WeightsNotFetchedError(WeightsError):
    """Nothing (or no manifest) in the model folder where a check was asked for."""

    exit_code = 3


class WeightsIncompleteError(WeightsError):
    """A fetch into the folder started and did not finish (its marker is still there)."""

    exit_code = 3


class GatedRepoError(WeightsError):
    """The Hugging Face repo needs a token that accepted its licence."""

    exit_code = 7

    def __init__(self, repo: str, modelscope_copy: str | None, detail: str = ""):
        self.repo = repo
        self.modelscope_copy = modelscope_copy
        alternative = f" or use --source modelscope (copy: {modelscope_copy})" if modelscope_copy else ""
        super().__init__(
            f"`{repo}` is gated on Hugging Face: set HF_TOKEN (a token that accepted the licence)"
            f"{alternative}{detail}"
        )


class PickleOnlyError(WeightsError):
    """A component has only pickle weights (.bin/.pt/.ckpt): refused, never loaded."""

    exit_code = 8

    def __init__(self, repo: str, component: str, files: list[str]):
        self.repo = repo
        self.component = component
        shown = ", ".join(files[:3]) + (f", ... ({len(files) - 3} more)" if len(files) > 3 else "")
        super().__init__(
            f"`{repo}`: component `{component}` has only pickle weights ({shown}) and no "
            ".safetensors; refused (pickle files can run code when loaded); use a repo or "
            "revision that has safetensors weights"
        )


class NotAPipelineError(WeightsError):
    """The repo lacks what a diffusers pipeline needs (model_index.json, or a variant's weights)."""

    exit_code = 8


class FetchFailedError(WeightsError):
    """Every source was tried and none delivered; `attempts` says what each one answered."""

    exit_code = 9

    def __init__(self, model: str, attempts: list[tuple[str, str]]):
        self.model = model
        self.attempts = attempts
        lines = "\n".join(f"  {label}: {reason}" for label, reason in attempts) or "  (no source to try)"
        super().__init__(f"could not fetch {model}; tried:\n{lines}")


class OfflineError(WeightsError):
    """Offline mode forbids the download that was asked for."""

    exit_code = 10
