"""A person at the web page, in a real headless Chromium (Debian's, driven by Playwright): enter the
API key, pick a mode of the served model and see exactly its inputs, upload the image and the
mode's extra input (tiny-ltx-2.3 `audio-to-video`: the soundtrack), wait in the queue behind another job,
watch the progress bar, play the video, see its thumbnail in the history.
The screenshot is kept in test-artifacts/web-ui.png.

Never `playwright install`: the browser is the distribution's `chromium` package (the Makefile's
`chromium` target installs it when CI=true, which also enables this test).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from service_harness import ARTIFACTS, Service, record_figure

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("I2V_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "browser-key-123"
MODEL = "tiny-ltx-2.3"
# what each mode shows: (image label says optional, the mode-input blocks shown, the required ones)
SHOWN = """(mode) => {
  document.querySelector('#mode').value = mode;
  document.querySelector('#mode').dispatchEvent(new Event('change'));
  const blocks = [...document.querySelectorAll('#inputs .input')].filter((b) => !b.hidden);
  const image = document.querySelector('#image-row').hidden ? 'unused'
    : document.querySelector('#image-need').textContent.includes('optional') ? 'optional' : 'required';
  return [image,
          blocks.map((b) => b.dataset.input),
          blocks.filter((b) => b.dataset.required === 'true').map((b) => b.dataset.input)];
}"""

RECORD_PROGRESS = """() => {
  window.seen = [];
  const bar = document.querySelector('#bar'), status = document.querySelector('#status');
  window.recorder = setInterval(() => window.seen.push([bar.value, status.textContent]), 20);
}"""

PLAY = """async () => {
  const v = document.querySelector('#player');
  await v.play();
  await new Promise((r) => setTimeout(r, 700));
  return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight, paused: v.paused, duration: v.duration};
}"""


MODES = (
    "two-stage",
    "two-stage-hq",
    "one-stage",
    "distilled",
    "keyframes",
    "audio-to-video",
    "retake",
    "ic-lora",
)


def write_tone(path: Path, seconds: float, rate: int = 16000) -> None:
    import wave

    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())


def test_a_person_makes_a_video_in_the_browser(tmp_path, tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install --no-install-recommends chromium` (make chromium)"
        )
    from playwright.sync_api import sync_playwright

    from i2v.cli import demo_image

    image, soundtrack = tmp_path / "ball.png", tmp_path / "drums.wav"
    demo_image(64, 64).save(image)
    write_tone(soundtrack, seconds=2.0)  # covers the video (9 frames at 8 fps)
    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "style.safetensors").write_bytes(b"listed by name; never loaded here")
    service = Service(
        tmp_path / "svc",
        tmp_path_factory.getbasetemp() / "models",
        api_keys=KEY,
        model=MODEL,
        loras_dir=loras,
    ).start()
    started = time.monotonic()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 1050})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(service.url + "/")
            page.wait_for_selector("#keybox:not([hidden])")  # the API said 401: the page asks for the key
            page.fill("#apikey", KEY)
            page.click("#savekey")
            page.wait_for_function("document.body.dataset.ready === 'true'")
            assert page.input_value("#model") == MODEL
            # greyed out, with the reason: real models without weights, and those too big for this CPU
            unavailable = page.eval_on_selector_all(
                "#model option:disabled", "els => els.map(e => [e.text, e.title])"
            )
            assert unavailable and all("i2v fetch" in title for _, title in unavailable)
            assert any(
                "does not fit this cpu" in text and "does not fit" in title for text, title in unavailable
            )
            # the modes come from the model's adapter: each shows exactly its inputs
            modes = page.eval_on_selector_all("#mode option", "els => els.map(e => [e.value, e.disabled])")
            assert [m for m, disabled in modes if not disabled] == list(MODES) and len(modes) == 8
            shown = {mode: page.evaluate(SHOWN, mode) for mode in MODES}
            assert shown["one-stage"] == ["optional", ["last_image", "keyframes", "lora"], []]
            assert shown["keyframes"] == ["required", ["last_image", "keyframes", "lora"], ["last_image"]]
            assert shown["audio-to-video"] == [
                "optional",
                ["last_image", "keyframes", "audio", "lora"],
                ["audio"],
            ]
            assert shown["retake"] == ["unused", ["video", "lora"], ["video"]]
            assert shown["ic-lora"] == [
                "optional",
                ["last_image", "keyframes", "reference_video", "lora"],
                ["reference_video", "lora"],
            ]
            page.evaluate(SHOWN, "audio-to-video")
            assert page.eval_on_selector_all("#lora option", "els => els.map(e => e.value)") == [
                "",
                "style.safetensors",
            ]
            page.set_input_files("#image", str(image))
            page.wait_for_selector("#preview:not([hidden])")
            page.set_input_files("#audio", str(soundtrack))
            page.fill("#prompt", "a yellow ball rolls across the field")
            page.check("input[name=preset][value=fast]")
            page.click("#advanced summary")
            page.fill("#steps", "8")
            # another client's long job runs first, so this one waits in the queue
            with service.client(KEY) as api:
                blocker = service.submit(
                    api, model=MODEL, prompt="first", num_inference_steps=40, size="64x64"
                ).json()
                service.wait_job(api, blocker["id"], states=("running",))
            page.evaluate(RECORD_PROGRESS)
            page.click("#submit")
            page.wait_for_function(
                "document.querySelector('#bar').dataset.state === 'succeeded'", timeout=180_000
            )
            page.wait_for_function(
                "(() => { const v = document.querySelector('#player');"
                " return !v.hidden && v.readyState >= 2; })()",
                timeout=30_000,
            )
            played = page.evaluate(PLAY)
            seen = page.evaluate("window.seen")
            page.wait_for_function(
                "(() => { const img = document.querySelector('#history tbody tr img.thumb');"
                " return img && img.complete && img.naturalWidth > 0; })()",
                timeout=30_000,
            )
            thumb = page.eval_on_selector(
                "#history tbody tr img.thumb", "img => [img.naturalWidth, img.naturalHeight, img.src]"
            )
            history = page.eval_on_selector_all("#history tbody tr", "rows => rows.map(r => r.innerText)")
            download = page.get_attribute("#download", "href")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-ui.png"), full_page=True)
            browser.close()
    finally:
        assert service.stop() == 0
    elapsed = time.monotonic() - started
    midway = [text for value, text in seen if 0 < value < 1]
    queued = [text for _, text in seen if text.startswith("queued (position 1)")]
    record_figure(
        "browser",
        {
            "seconds": round(elapsed, 1),
            "progress_samples_midway": len(midway),
            "example": midway[len(midway) // 2] if midway else None,
            "played": played,
            "queued_samples": len(queued),
        },
    )
    assert not errors, errors
    assert queued, seen[:5]  # the queue position while waiting
    assert midway and any("denoising" in t and "ETA" in t for t in midway), seen[-5:]
    assert played["time"] > 0 and (played["width"], played["height"]) == (64, 64)
    assert download.startswith("blob:") and any(
        "succeeded" in row and "audio-to-video" in row for row in history
    )
    assert thumb[:2] == [64, 64] and thumb[2].startswith("blob:")
