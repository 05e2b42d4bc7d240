"""The images' and compose's files read as data: what must hold without building anything.

The real builds and a real `compose up` are tests/test_containers.py (CI); these run everywhere in
a second and catch the edits that would only fail there, or only on a GPU / Atlas host.
"""

from __future__ import annotations

import dataclasses
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from hosts import use_host

from i2v import hardware
from i2v.request import InvalidRequestError
from provision import compose_override

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
STAGES = ["base", "deps", "app", "weights", "runtime", "test"]


def load_script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(ROOT / "scripts"))
from container_checks import dockerfile as containers  # noqa: E402  (scripts/ is not a package root)
from container_checks.runner import free_port  # noqa: E402

lock = load_script("lock_script", DOCKER / "requirements" / "lock.py")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


# ---------------------------------------------------------------------------------------------- compose


@pytest.mark.parametrize("profile", ["cuda", "npu", "cpu"], ids=lambda p: f"{p}-profile")  # id "cuda" = @cuda
def test_each_profile_fetches_then_serves(compose, profile):
    services = compose["services"]
    assert profile in services["fetch"]["profiles"] and services["fetch"]["restart"] == "no"
    server = services[f"server-{profile}"]
    assert server["profiles"] == [profile]
    assert server["depends_on"] == {"fetch": {"condition": "service_completed_successfully"}}
    assert server["command"] == ["i2v", "serve"]
    assert "i2v-healthcheck" in server["healthcheck"]["test"] and server["healthcheck"]["start_period"]
    assert server["restart"] == "unless-stopped" and server["shm_size"]
    assert server["env_file"] == [{"path": "${I2V_ENV_FILE:-.env}", "required": False}]
    targets = {v["target"] if isinstance(v, dict) else v.split(":")[-1] for v in server["volumes"]}
    assert {"/models", "/outputs", "/data"} <= targets
    # SQLite in the jobs volume unless .env names the shared store (provision env --role head|worker)
    assert server["environment"]["I2V_DATABASE_URL"] == "${I2V_DATABASE_URL:-sqlite:////data/jobs.db}"


class ComposeLoader(yaml.SafeLoader):
    """compose's merge tags (!override, !reset) read as plain values."""


ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    ),
)
ComposeLoader.add_constructor(
    "!reset",
    lambda loader, node: loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None,
)


def test_cuda_reserves_gpu_0_until_the_override_lists_the_hosts_gpus(compose):
    (device,) = compose["services"]["server-cuda"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["device_ids"] == ["0"] and "count" not in device  # exclusive keys


@pytest.mark.parametrize("visible", ["0,1,2,3", "3", "1, 5", ""])
def test_cuda_override_has_one_device_ids_entry_per_gpu(monkeypatch, visible):
    use_host(monkeypatch, "h100x8")
    text = compose_override.render(hardware.probe(with_docker=False), visible)
    (device,) = yaml.load(text, Loader=ComposeLoader)["services"]["server-cuda"]["deploy"]["resources"][
        "reservations"
    ]["devices"]
    wanted = [part.strip() for part in visible.split(",")] if visible else ["0"]
    assert device["device_ids"] == wanted and all("," not in entry for entry in device["device_ids"])
    assert "devices: !override\n" in text  # replaces compose.yaml's list instead of adding to it


@pytest.mark.parametrize("visible", ["0,,1", "0,0", "gpu0", "0;1"])
def test_cuda_override_refuses_bad_device_ids_naming_the_key(monkeypatch, visible):
    use_host(monkeypatch, "h100x8")
    with pytest.raises(InvalidRequestError) as caught:
        compose_override.render(hardware.probe(with_docker=False), visible)
    assert str(caught.value).startswith(
        f"`I2V_VISIBLE_DEVICES` = {visible!r} is invalid: comma-separated GPU"
    )


def test_npu_nodes_driver_mounts_and_group(compose):
    npu = compose["services"]["server-npu"]
    assert npu["devices"] == [
        "/dev/davinci_manager",
        "/dev/devmm_svm",
        "/dev/hisi_hdc",
    ]  # davinciN: the override
    assert npu["group_add"] == ["${I2V_NPU_GID:-1000}"]
    mounts = {
        v["target"]: v
        for v in npu["volumes"]
        if isinstance(v, dict) and v["target"] not in ("/models", "/loras")
    }
    assert set(mounts) == {
        "/usr/local/dcmi",
        "/usr/local/bin/npu-smi",
        "/usr/local/Ascend/driver/lib64",
        "/usr/local/Ascend/driver/version.info",
        "/etc/ascend_install.info",
    }
    for target, mount in mounts.items():
        assert mount["read_only"] and mount["bind"] == {"create_host_path": False}
        assert mount["source"] == "${I2V_DRIVER_ROOT:-}" + target


def test_every_server_mounts_the_lora_folder_read_only(compose):
    for name, service in compose["services"].items():
        if not name.startswith("server-"):
            continue
        loras = [v for v in service["volumes"] if isinstance(v, dict) and v["target"] == "/loras"]
        assert len(loras) == 1 and loras[0]["read_only"], name
        assert loras[0]["source"] == "${I2V_LORAS_DIR:-./loras}"
        assert service["environment"]["I2V_LORAS_DIR"] == "/loras", name


def test_fetch_runs_the_projects_fetch_without_device_backends(compose):
    fetch = compose["services"]["fetch"]
    assert fetch["command"][0].startswith('i2v fetch "$${I2V_MODEL')
    assert fetch["environment"]["TORCH_DEVICE_BACKEND_AUTOLOAD"] == "0"


# ---------------------------------------------------------------------------------------------- override


@pytest.fixture
def atlas(monkeypatch) -> hardware.HardwareReport:
    use_host(monkeypatch, "910b3x8")
    return hardware.probe(with_docker=False)


def test_override_switches_to_the_ascend_runtime_when_docker_has_it(atlas):
    with_runtime = dataclasses.replace(
        atlas, docker=hardware.DockerInfo(available=True, runtimes=("ascend", "runc"))
    )
    text = compose_override.render(with_runtime)
    assert "runtime: ascend\n" in text and 'ASCEND_VISIBLE_DEVICES: "0,1,2,3,4,5,6,7"' in text
    assert "devices: !reset []\n" in text and "volumes: !override\n" in text and "/dev/davinci" not in text
    # the replaced volume list keeps every volume compose.yaml gives the servers
    for target in (
        "target: /models",
        "target: /loras, read_only: true",
        "${I2V_SHARED_OUTPUTS:-outputs}:/outputs",
        "jobs:/data",
    ):
        assert target in text, target
    assert "runtime: ascend" not in compose_override.render(atlas)


def test_override_keeps_a_users_own_file_and_removes_its_own(atlas, tmp_path):
    mine = tmp_path / compose_override.NAME
    mine.write_text("services: {}\n")
    note = compose_override.write(tmp_path / ".env", atlas)
    assert mine.read_text() == "services: {}\n" and "not provision's" in note and "/dev/davinci7" in note
    mine.unlink()
    assert compose_override.write(tmp_path / ".env", atlas).startswith("wrote")
    cpu_host = dataclasses.replace(atlas, vendor="none", devices=())
    assert compose_override.write(tmp_path / ".env", cpu_host) is None and not mine.exists()


# ---------------------------------------------------------------------------------------------- Dockerfiles


def instructions(dockerfile: Path) -> list[str]:
    return containers.joined_lines(dockerfile)


@pytest.mark.parametrize("name", ["Dockerfile.cuda", "Dockerfile.cann"])
def test_global_args_each_carry_a_reason(name):
    lines = (DOCKER / name).read_text().splitlines()
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    for i, line in enumerate(lines[:first_from]):
        if line.startswith("ARG "):
            above = next(x for x in reversed(lines[:i]) if not x.startswith("ARG "))
            assert above.startswith("# "), f"{name}: {line} has no comment saying why"


@pytest.mark.parametrize("name", ["Dockerfile.cuda", "Dockerfile.cann"])
def test_stages_dependencies_before_source(name):
    ins = instructions(DOCKER / name)
    assert [line.split()[-1] for line in ins if line.startswith("FROM ")] == STAGES
    assert not any(line.startswith("# syntax") for line in (DOCKER / name).read_text().splitlines())
    lock_install = next(i for i, line in enumerate(ins) if "--require-hashes" in line)
    torch_install = next(i for i, line in enumerate(ins) if '"torch==${TORCH_VERSION}"' in line)
    source = next(i for i, line in enumerate(ins) if line.startswith("COPY i2v"))
    assert torch_install < lock_install < source
    assert all("--mount=type=cache" in line for line in ins if "pip install --index-url" in line)


@pytest.mark.parametrize("name", ["Dockerfile.cuda", "Dockerfile.cann"])
def test_runtime_stage_non_root_healthcheck_init_labels(name):
    ins = instructions(DOCKER / name)
    runtime = ins[
        next(i for i, line in enumerate(ins) if line.endswith("AS runtime")) : next(
            i for i, line in enumerate(ins) if line.endswith("AS test")
        )
    ]
    user = next(line for line in runtime if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("root", "0")
    health = next(line for line in runtime if line.startswith("HEALTHCHECK "))
    assert "--start-period=" in health and health.endswith('CMD ["i2v-healthcheck"]')
    assert 'ENTRYPOINT ["dumb-init", "--", "i2v-entrypoint"]' in runtime
    assert "org.opencontainers.image.revision" in next(line for line in runtime if line.startswith("LABEL "))


def test_base_images_are_the_real_names():
    assert containers.base_images(DOCKER / "Dockerfile.cuda") == ["nvidia/cuda:12.8.1-base-ubuntu22.04"]
    assert containers.base_images(DOCKER / "Dockerfile.cann") == [
        "quay.io/ascend/cann:8.3.rc2-910b-ubuntu22.04-py3.11"
    ]
    assert containers.base_images(DOCKER / "Dockerfile.cann", {"CHIP": "310p", "OS": "openeuler24.03"}) == [
        "quay.io/ascend/cann:8.3.rc2-310p-openeuler24.03-py3.11"
    ]


# ---------------------------------------------------------------------------------------------- locks and bake


def arg_default(dockerfile: str, name: str) -> str:
    return re.search(rf"(?m)^ARG {name}=(.*)$", (DOCKER / dockerfile).read_text()).group(1).strip('"')


def requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-") for line in lines}


@pytest.mark.parametrize("family", lock.FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("arch", sorted(lock.PLATFORMS))
def test_locks_pin_and_hash_everything_pyproject_needs(family, arch):
    import tomllib

    text = lock.lock_path(family, arch).read_text()
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+(\[[^\]]+\])?==[^ ]+ \\", e) for e in entries), entries
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= len(entries)
    pinned = requirement_names(entries)
    assert not {name for name in pinned if lock.TORCH_BUILD.match(name)}
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = requirement_names([r for extra in family.extras for r in optional[extra]]) - {"torch"}
    assert wanted <= pinned, (
        f"{lock.lock_path(family, arch).name} lacks {sorted(wanted - pinned)}: "
        "run python docker/requirements/lock.py"
    )


def test_torch_pins_agree_across_lock_dockerfiles_and_bake():
    families = {f.name: f.torch for f in lock.FAMILIES}
    bake = (DOCKER / "docker-bake.hcl").read_text()
    assert arg_default("Dockerfile.cuda", "TORCH_VERSION") == families["cuda"]
    assert arg_default("Dockerfile.cann", "TORCH_VERSION") == families["cann"]
    assert (
        f'cuda = "12.8", image = "{arg_default("Dockerfile.cuda", "CUDA_VERSION")}", torch = "{families["cuda"]}"'
        in bake
    )
    assert f'cann = "{arg_default("Dockerfile.cann", "CANN_VERSION")}", torch = "{families["cann"]}"' in bake
    cpu = bake[bake.index('target "cpu"') :]
    assert (
        f'BUILD_BASE      = "{containers.CPU_BASE}"' in cpu
        and f'RUNTIME_BASE    = "{containers.CPU_BASE}"' in cpu
    )


# ---------------------------------------------------------------------------------------------- scripts


class Ready(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/health/ready" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def healthcheck(port: int) -> int:
    env = {
        **os.environ,
        "I2V_PORT": str(port),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }
    return subprocess.run(
        [sys.executable, str(DOCKER / "scripts" / "healthcheck.py")], env=env, capture_output=True, timeout=30
    ).returncode


@pytest.mark.parametrize(("status", "code"), [(200, 0), (503, 1)])
def test_healthcheck_passes_only_on_ready(status, code):
    handler = type("Handler", (Ready,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert healthcheck(server.server_address[1]) == code  # never through the proxy in the environment
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_fails_when_nothing_listens():
    assert healthcheck(free_port()) == 1


def test_entrypoint_sources_the_cann_env_script_then_runs_the_command(tmp_path):
    script = tmp_path / "cann-env.sh"
    script.write_text('export STUB="sourced"\n')
    run = ["bash", str(DOCKER / "scripts" / "entrypoint.sh"), "sh", "-c", 'echo "${STUB:-none}:$0"', "argv0"]
    with_env = subprocess.run(
        run, env={**os.environ, "I2V_CANN_ENV": str(script)}, capture_output=True, text=True, check=True
    ).stdout
    without = subprocess.run(
        run,
        env={**os.environ, "I2V_CANN_ENV": str(tmp_path / "missing.sh")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (with_env, without) == ("sourced:argv0\n", "none:argv0\n")  # CUDA / CPU images have no such script


def test_make_up_provisions_then_waits_for_healthy(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("I2V_IMAGE=docker.io/i2vdeploy/i2v-deploy:0.1.0-cann8.3.rc2-310p-openeuler24.03\n")
    (tmp_path / compose_override.NAME).write_text(compose_override.MARKER + "\n")
    out = subprocess.run(
        ["make", "-n", "-W", ".venv/.installed", "up", "build-cann", f"ENV_FILE={env_file}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"provision env --output {env_file}" in out
    assert f"--env-file {env_file} -f compose.yaml -f {tmp_path}/compose.override.yaml up -d --wait" in out
    assert "cann-8-3-rc2-310p-openeuler24-03" in out


def test_release_workflow_pushes_only_when_a_maintainer_asks():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "images.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"workflow_dispatch"}  # no push on tags or branches by itself
    assert triggers["workflow_dispatch"]["inputs"]["push"]["default"] is False
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    pushing = [s for s in steps if "--push" in str(s.get("run", ""))]
    logins = [s for s in steps if str(s.get("uses", "")).startswith("docker/login-action")]
    assert pushing and all(s.get("if") == "inputs.push" for s in pushing + logins)
    assert 'docker buildx bake -f docker/docker-bake.hcl --push "${{ matrix.target }}"' in pushing[0]["run"]
