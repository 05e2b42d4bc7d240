"""Many hosts from `provision`: `env --role head|worker` writes the matching `.env` (and the NPU override
for the role's service), compose.yaml has the services those profiles name, and `plan` shows how one
job spreads over the host's cards. Real subprocesses with recorded hosts' tools on PATH."""

from __future__ import annotations

import json

import pytest
import yaml
from hosts import use_host
from test_compose_files import ROOT
from test_provision_cli import provision

from provision.envfile import parse

PG = "postgresql+psycopg://i2v:s3cret@head.example:5432/i2v"


def test_head_gets_postgres_a_kept_password_and_the_command_for_its_workers(monkeypatch, tmp_path):
    use_host(monkeypatch, "h100x8")
    env = tmp_path / ".env"
    first = provision(
        "env", "--output", str(env), "--role", "head", "--shared-outputs", "/mnt/cpfs/i2v", cwd=tmp_path
    )
    values = parse(env.read_text())
    assert values["COMPOSE_PROFILES"] == "cuda,head"
    password = values["I2V_POSTGRES_PASSWORD"]
    assert (
        len(password) >= 24
        and values["I2V_DATABASE_URL"] == f"postgresql+psycopg://i2v:{password}@postgres:5432/i2v"
    )
    assert values["I2V_SHARED_OUTPUTS"] == "/mnt/cpfs/i2v" and values["I2V_NODE_NAME"]
    assert "provision env --role worker --database-url postgresql+psycopg://i2v:" in first.stderr
    provision("env", "--output", str(env), "--role", "head", cwd=tmp_path)  # a rerun keeps the password
    again = parse(env.read_text())
    assert again["I2V_POSTGRES_PASSWORD"] == password and again["I2V_SHARED_OUTPUTS"] == "/mnt/cpfs/i2v"
    assert list(values).count("COMPOSE_PROFILES") == 1 and env.read_text().count("\nCOMPOSE_PROFILES=") == 1
    override = yaml.safe_load((tmp_path / "compose.override.yaml").read_text().replace("!override", ""))
    assert list(override["services"]) == ["server-cuda"]  # the head serves: its GPUs go to the server


def test_worker_host_needs_the_heads_store_and_the_shared_folder(monkeypatch, tmp_path):
    use_host(monkeypatch, "910b3x8")
    env = tmp_path / ".env"
    missing = provision("env", "--output", str(env), "--role", "worker", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "database-url" in missing.stderr and not env.exists()
    sqlite = provision(
        "env",
        "--output",
        str(env),
        "--role",
        "worker",
        "--database-url",
        "sqlite:////data/jobs.db",
        cwd=tmp_path,
        check=False,
    )
    assert sqlite.returncode == 2 and "PostgreSQL" in sqlite.stderr
    no_folder = provision(
        "env", "--output", str(env), "--role", "worker", "--database-url", PG, cwd=tmp_path, check=False
    )
    assert no_folder.returncode == 2 and "shared-outputs" in no_folder.stderr
    provision(
        "env", "--output", str(env), "--role", "worker", "--database-url", PG, "--shared-outputs", "/mnt/nfs/i2v",
        "--node-name", "atlas-2", cwd=tmp_path,
    )  # fmt: skip
    values = parse(env.read_text())
    assert values["COMPOSE_PROFILES"] == "worker-npu" and values["I2V_DATABASE_URL"] == PG
    assert (values["I2V_NODE_NAME"], values["I2V_SHARED_OUTPUTS"]) == ("atlas-2", "/mnt/nfs/i2v")
    assert "I2V_POSTGRES_PASSWORD" not in values
    override = yaml.safe_load((tmp_path / "compose.override.yaml").read_text())
    assert list(override["services"]) == ["worker-npu"]  # the role's service gets this host's davinci nodes
    assert "/dev/davinci7" in override["services"]["worker-npu"]["devices"]


def test_a_single_host_env_is_what_it_was(monkeypatch, tmp_path):
    use_host(monkeypatch, "h100x8")
    provision("env", "--output", str(tmp_path / "a.env"), cwd=tmp_path)
    provision("env", "--output", str(tmp_path / "b.env"), "--role", "single", cwd=tmp_path)
    assert (tmp_path / "a.env").read_text() == (
        tmp_path / "b.env"
    ).read_text()  # tests/golden/ pins that text


def test_compose_has_the_services_the_role_profiles_name():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["profiles"] == ["head"] and "postgres" in compose["volumes"]
    for kind in ("cuda", "npu", "cpu"):
        server, worker = services[f"server-{kind}"], services[f"worker-{kind}"]
        assert worker["command"] == ["i2v", "workers"] and worker["healthcheck"] == {"disable": True}
        assert "ports" not in worker and worker["depends_on"] == server["depends_on"]
        assert worker["profiles"] == [f"worker-{kind}"] and f"worker-{kind}" in services["fetch"]["profiles"]
        assert worker["environment"]["I2V_DEVICE"] == kind
        for key in ("deploy", "devices", "group_add", "volumes"):  # the same device wiring as the server
            assert worker.get(key) == server.get(key), (kind, key)
    environment = compose["x-image"]["environment"]
    assert environment["I2V_DATABASE_URL"] == "${I2V_DATABASE_URL:-sqlite:////data/jobs.db}"
    assert "${I2V_SHARED_OUTPUTS:-outputs}:/outputs" in compose["x-image"]["volumes"]


@pytest.mark.parametrize(
    ("host", "model", "layout"),
    [
        ("h100x8", "wan2.1-i2v-14b-480p", "8 cards: cfg 2 x ulysses 4"),
        ("910b3x8", "wan2.1-i2v-14b-720p", "8 cards: cfg 2 x ulysses 4"),
        ("h100x8", "i2vgen-xl", "1 card"),  # a UNet: one card a job, the other seven serve other jobs
        ("rtx4090", "ltx-video", "1 card"),  # one card on the host
    ],
)
def test_plan_shows_the_cards_one_job_runs_on(monkeypatch, host, model, layout):
    use_host(monkeypatch, host)
    p = json.loads(provision("plan", "--model", model, "--json").stdout)
    assert p["layout"] == layout and p["cards"] == int(layout.split()[0])
    pair = json.loads(provision("plan", "--model", model, "--cards", "1", "--json").stdout)
    assert pair["cards"] == 1


def test_a_gpu_worker_host_gets_its_gpus_on_the_worker_service(monkeypatch, tmp_path):
    use_host(monkeypatch, "h100x8")
    command = ["env", "--output", str(tmp_path / ".env"), "--role", "worker", "--database-url", PG]
    provision(*command, "--shared-outputs", "/mnt/nfs/i2v", cwd=tmp_path)
    override = yaml.safe_load((tmp_path / "compose.override.yaml").read_text().replace("!override", ""))
    (device,) = override["services"]["worker-cuda"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["device_ids"] == [str(i) for i in range(8)] and list(override["services"]) == [
        "worker-cuda"
    ]
