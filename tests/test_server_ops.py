"""Operating a server: Prometheus metrics, refused calls in the log, TLS files checked early."""

from __future__ import annotations

import logging
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rrtn_plugin.client.library import Client, ServerError
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.model import RRTN
from rrtn_plugin.server.app import ServerSecurity, start_server, tls_pair
from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits


def service_of(model: RRTN) -> RestoreService:
    return RestoreService(
        [ServedModel("small", model)], device="cpu", limits=ServiceLimits(memory_budget=1 << 30)
    )


def scrape(port: int) -> dict[str, float]:
    """Every sample of the server's /metrics, parsed by Prometheus' own client parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_metrics_endpoint_counts_calls_and_reports_the_service(small_model: RRTN) -> None:
    service = service_of(small_model)
    running = start_server(
        service,
        address="127.0.0.1:0",
        security=ServerSecurity(token="t0ken"),
        metrics_port=0,
    )
    try:
        assert running.metrics_port
        before = scrape(running.metrics_port)
        assert before["rrtn_sessions_open"] == 0
        assert before["rrtn_memory_budget_bytes"] == 1 << 30
        assert before["rrtn_process_max_rss_bytes"] > 10 << 20
        with Client(f"127.0.0.1:{running.port}", token="wrong", timeout=10) as client:
            with pytest.raises(ServerError) as refused:
                client.info()
            assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        with Client(f"127.0.0.1:{running.port}", token="t0ken", timeout=10) as client:
            client.info()
            session = client.open_session(first_frame=1, last_frame=3, width=64, height=48)
            after = scrape(running.metrics_port)
            session.close()
        assert after["rrtn_sessions_open"] == 1
        assert after["rrtn_requests_total{method=GetServerInfo,status=UNAUTHENTICATED}"] == 1
    finally:
        running.stop()


def test_metrics_follow_a_restore(identity_checkpoint: Path, tmp_path: Path) -> None:
    """The servicer feeds the metrics: calls by method and status, frames restored, seconds per
    stage, cache hits, sessions and memory; scraped with Prometheus' own parser."""
    from helpers import exr_sequence

    from rrtn_plugin.model import load_rrtn

    source = exr_sequence(tmp_path / "in", range(1, 4), size=(32, 24))
    service = RestoreService(
        [ServedModel("m", load_rrtn(identity_checkpoint), max_passes=1)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30, host_budget=1 << 30),
    )
    running = start_server(service, address="127.0.0.1:0", metrics_port=0)
    assert running.metrics_port
    try:
        with Client(f"127.0.0.1:{running.port}", timeout=60) as client:
            clip = {"first_frame": 1, "last_frame": 3, "width": 32, "height": 24}
            for _ in range(2):  # the second session finds the first's work in the cache
                session = client.open_session(input_colorspace="lin_rec709", **clip)
                session.restore_files(
                    1, 3, input=str(source), output=str(tmp_path / "out/p.####.exr")
                )
                session.close()
            with pytest.raises(ServerError):
                client.open_session(**{**clip, "window": 2})
            during = client.open_session(**clip)
            samples = scrape(running.metrics_port)
            during.close()
    finally:
        running.stop()
    calls = "rrtn_requests_total{method=%s,status=%s}"
    assert samples[calls % ("OpenSession", "OK")] == 3
    assert samples[calls % ("OpenSession", "INVALID_ARGUMENT")] == 1
    assert samples[calls % ("Restore", "OK")] == 2
    assert samples[calls % ("CloseSession", "OK")] == 2
    assert samples["rrtn_frames_restored_total"] == 6
    for stage in ("flow", "restore", "write"):  # (the bytes transport reads nothing)
        assert samples[f"rrtn_stage_seconds_count{{stage={stage}}}"] >= 1
        assert samples[f"rrtn_stage_seconds_sum{{stage={stage}}}"] >= 0
    assert samples["rrtn_cache_hits"] >= 1
    assert samples["rrtn_cache_shared_bytes"] > 0  # the closed sessions' work, kept
    assert samples["rrtn_sessions_open"] == 1
    assert samples["rrtn_host_held_bytes"] > 0  # the open session's plan
    assert samples["rrtn_process_rss_bytes"] > 10 << 20


def test_refused_calls_are_logged_without_the_token(
    small_model: RRTN, caplog: pytest.LogCaptureFixture
) -> None:
    running = start_server(
        service_of(small_model), address="127.0.0.1:0", security=ServerSecurity(token="t0ken")
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger="rrtn_plugin.server"),
            Client(f"127.0.0.1:{running.port}", token="guess", timeout=10) as client,
            pytest.raises(ServerError),
        ):
            client.info()
    finally:
        running.stop()
    refusals = [r.getMessage() for r in caplog.records if "UNAUTHENTICATED" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].startswith("method=GetServerInfo peer=ipv4:127.0.0.1:")
    assert "status=UNAUTHENTICATED" in refusals[0]
    assert "guess" not in refusals[0]


OPENSSL_SELF_SIGNED = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
OPENSSL_SELF_SIGNED += ["-subj", "/CN=localhost"]


@pytest.fixture(scope="module")
def pem_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    made = subprocess.run(
        [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    return cert, key


def test_tls_files_are_checked_before_binding(pem_pair: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pem_pair
    key_pem, cert_pem = tls_pair(cert, key)
    assert b"PRIVATE KEY" in key_pem
    assert b"CERTIFICATE" in cert_pem
    with pytest.raises(RRTNError, match="swapped"):
        tls_pair(key, cert)
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate")
    with pytest.raises(RRTNError, match="no PEM certificate"):
        tls_pair(text, key)
    other_key = tmp_path / "other.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-out", str(other_key)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(RRTNError, match="does not belong"):
        tls_pair(cert, other_key)


def test_swapped_tls_options_fail_with_a_certificate_error(
    small_model: RRTN, pem_pair: tuple[Path, Path]
) -> None:
    cert, key = pem_pair
    with pytest.raises(RRTNError, match="swapped"):
        start_server(
            service_of(small_model),
            address="127.0.0.1:0",
            security=ServerSecurity(tls_cert=key, tls_key=cert),
        )


def test_calls_log_as_json_lines_when_asked(
    small_model: RRTN, caplog: pytest.LogCaptureFixture
) -> None:
    """`serve --log-json`: one JSON object per call, with its fields."""
    import json

    from rrtn_plugin.server.app import JsonLogFormatter

    running = start_server(service_of(small_model), address="127.0.0.1:0")
    try:
        with (
            caplog.at_level(logging.INFO, logger="rrtn_plugin.server"),
            Client(f"127.0.0.1:{running.port}", timeout=10) as client,
        ):
            client.info()
            with pytest.raises(ServerError):
                client.open_session(first_frame=5, last_frame=1, width=8, height=8)
    finally:
        running.stop()
    records = [r for r in caplog.records if hasattr(r, "call")]
    lines = [json.loads(JsonLogFormatter().format(r)) for r in records]
    assert [(line["method"], line["status"]) for line in lines] == [
        ("GetServerInfo", "OK"),
        ("OpenSession", "INVALID_ARGUMENT"),
    ]
    assert lines[1]["detail"] == "last_frame 1 is before first_frame 5"
    assert lines[1]["peer"].startswith("ipv4:127.0.0.1:")
    assert lines[1]["level"] == "WARNING"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('listen = "127.0.0.1:0"\nworkers = 3\n', "unknown setting 'workers'"),
        ("listen = [\n", "is not valid TOML"),
        ('max_sessions = "many"\n', "'max_sessions' has a bad value 'many'"),
        ("log_json = 1\n", "'log_json' must be true or false"),
        ("max_sessions = [1]\n", "'max_sessions' must be a single value"),
    ],
)
def test_a_bad_config_file_is_named_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    from rrtn_plugin.cli import main

    config = tmp_path / "serve.toml"
    config.write_text(text)
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_config_file_gives_what_flags_do_and_flags_win(tmp_path: Path) -> None:
    from rrtn_plugin.cli.main import build_parser
    from rrtn_plugin.cli.serve import apply_config

    config = tmp_path / "serve.toml"
    config.write_text(
        'listen = "0.0.0.0:6000"\nroot = ["/show", "/shared"]\nmemory_budget = 60\n'
        "max_sessions = 4\nlog_json = true\nmetrics_port = 9464\n"
    )
    args = build_parser().parse_args(["serve", "--config", str(config), "--max-sessions", "9"])
    apply_config(args, args.serve_parser)
    assert args.listen == "0.0.0.0:6000"
    assert args.root == [Path("/show"), Path("/shared")]
    assert (args.memory_budget, args.max_sessions, args.log_json) == (60.0, 9, True)
    assert args.metrics_port == 9464


def test_no_share_work_from_the_flag_or_the_config_file_reaches_the_limits(
    tmp_path: Path,
) -> None:
    from rrtn_plugin.cli.main import build_parser
    from rrtn_plugin.cli.serve import apply_config, service_limits

    def limits(*flags: str, config: str | None = None) -> ServiceLimits:
        argv = ["serve", *flags]
        if config is not None:
            (tmp_path / "serve.toml").write_text(config)
            argv += ["--config", str(tmp_path / "serve.toml")]
        args = build_parser().parse_args(argv)
        if config is not None:
            apply_config(args, args.serve_parser)
        return service_limits(args)

    assert limits().share_work is ServiceLimits().share_work is True
    assert limits("--no-share-work").share_work is False
    assert limits(config="share_work = false\n").share_work is False
    assert limits(config="share_work = true\n").share_work is True
    assert limits("--no-share-work", config="share_work = true\n").share_work is False
    assert limits(config="max_sessions = 3\n").max_sessions == 3
