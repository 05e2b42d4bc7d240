"""Mirror timing against real HTTP servers on loopback: a fast one, a slow one, a broken one."""

import http.server
import threading
import time

import pytest

from provision import mirrors


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        if self.path.startswith("/broken"):
            self.send_response(503)
            self.end_headers()
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fastest_answering_candidate_wins(server):
    candidates = {
        "pip": (
            ("slow", "S", f"{server}/slow"),
            ("fast", "F", f"{server}/fast"),
            ("broken", "B", f"{server}/broken"),
        ),
        "huggingface": (("closed", "C", "http://127.0.0.1:9/"), ("only", "O", f"{server}/only")),
        "modelscope": (("none", "N", "http://127.0.0.1:9/"),),
    }
    timings = mirrors.time_all(candidates, timeout=1.0)
    by_name = {t.name: t for t in timings}
    assert by_name["slow"].seconds is None and "timed out" in (by_name["slow"].error or "")
    assert by_name["broken"].seconds is None and by_name["broken"].status == 503
    assert by_name["closed"].seconds is None
    best = mirrors.fastest(timings)
    assert best["pip"].name == "fast"
    assert best["huggingface"].name == "only"
    assert best["modelscope"] is None


def test_defaults_are_the_first_candidates():
    assert mirrors.DEFAULTS["pip"].startswith("https://pypi.tuna.tsinghua.edu.cn")
    assert mirrors.DEFAULTS["huggingface"] == "https://hf-mirror.com"
    assert set(mirrors.ENV_KEYS.values()) == {"PIP_INDEX_URL", "HF_ENDPOINT", "MODELSCOPE_DOMAIN"}
