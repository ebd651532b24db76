"""The gRPC server and the client library, for real over loopback and a unix socket."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from helpers import exr_sequence

from rrtn_plugin.client.library import Cancel, Client, ServerError, frame_path, sequence_pattern
from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.model import RRTN
from rrtn_plugin.options import OPTIONS, options_from
from rrtn_plugin.progress import Progress, check_cancel
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2 as pb
from rrtn_plugin.server.app import ServerSecurity, is_loopback, start_server
from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits, SessionSpec

SETTINGS = {"window": 6, "overlap": 3, "max_passes": 2, "stop_psnr": 100.0}
AOVS = ["mask", "repair", "motion"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("storage")
    exr_sequence(root / "in", range(1001, 1011), size=(40, 32), seed=5)
    return root


@pytest.fixture(scope="module")
def server(small_model: RRTN, storage: Path) -> Iterator[tuple[str, RestoreService]]:
    service = RestoreService(
        [ServedModel("small", small_model)],
        device="cpu",
        limits=ServiceLimits(
            memory_budget=1 << 30, host_budget=1 << 30, max_sessions=4, path_roots=(storage,)
        ),
    )
    running = start_server(service, address="127.0.0.1:0")
    yield f"127.0.0.1:{running.port}", service
    running.stop()


def open_clip(client: Client, **overrides: object):
    kwargs = {
        "first_frame": 1001,
        "last_frame": 1010,
        "width": 40,
        "height": 32,
        "input_colorspace": "lin_rec709",
        "aovs": AOVS,
        **SETTINGS,
        **overrides,
    }
    return client.open_session(**kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def in_process(small_model: RRTN, storage: Path) -> Path:
    """The same job run in this process, without a server: the reference for the transports."""
    out = storage / "local"
    restore_sequence(
        storage / "in" / "plate.####.exr",
        out / "plate.####.exr",
        first=small_model,
        settings=JobSettings(
            frames=list(range(1003, 1008)),
            handles=10,
            input_colorspace="lin_rec709",
            aovs=(Aov.MASK, Aov.REPAIR, Aov.MOTION),
            restore=RestoreOptions(device="cpu", **SETTINGS),
        ),
    )  # type: ignore[arg-type]
    return out


def assert_same_frames(a: Path, b: Path, frames: range) -> None:
    """Same channels and values; RAFT batched differently may move values by float noise,
    which the half-float picture channels round away or show as one half step."""
    for f in frames:
        info_a, pixels_a = read_pixels(a / f"plate.{f}.exr")
        info_b, pixels_b = read_pixels(b / f"plate.{f}.exr")
        assert info_a.channels == info_b.channels
        assert np.allclose(pixels_a, pixels_b, rtol=2**-10, atol=1e-5), f


def test_server_info_describes_models_options_and_limits(server) -> None:
    address, _ = server
    with Client(address) as client:
        info = client.info()
    assert [m.name for m in info.models] == ["small"]
    assert {o.name for o in info.options} >= {"max_passes", "window", "aovs", "color_mode"}
    assert info.limits.max_chunk_bytes < 4 << 20
    assert info.limits.path_transport
    limits = info.limits
    assert (limits.max_frame_number, limits.max_clip_frames, limits.max_side) == (
        999_999_999,
        200_000,
        16_384,
    )
    assert (limits.max_channels, limits.max_name_chars) == (64, 256)
    assert "ACEScg" in info.colorspaces
    assert info.device == "cpu"


def test_advertised_limits_are_the_ones_enforced(server) -> None:
    address, _ = server
    with Client(address) as client:
        limits = client.info().limits
        edge = limits.max_frame_number
        for first, last, width, height, field in [
            (edge + 1, edge + 2, 16, 16, "first_frame"),
            (1, limits.max_clip_frames + 1, 16, 16, "frames"),
            (1, 3, limits.max_side + 1, 16, "width"),
        ]:
            with pytest.raises(ServerError) as refused:
                client.open_session(first_frame=first, last_frame=last, width=width, height=height)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT, field
        inside = client.open_session(
            first_frame=edge - 2, last_frame=edge, width=limits.max_side, height=16
        )
        inside.close()


def test_bytes_transport_gives_the_in_process_frames(
    server, storage: Path, in_process: Path
) -> None:
    address, _ = server
    events = []
    with Client(address) as client:
        session = open_clip(client)
        summary = session.restore_files(
            1003,
            1007,
            input=str(storage / "in/plate.####.exr"),
            output=str(storage / "bytes/plate.####.exr"),
            progress=events.append,
        )
        assert list(summary.frames) == [1003, 1004, 1005, 1006, 1007]
        assert summary.windows_computed > 0
        again = session.restore_files(
            1003,
            1007,
            input=str(storage / "in/plate.####.exr"),
            output=str(storage / "bytes2/plate.####.exr"),
        )
        assert (again.windows_computed, again.windows_cached) == (0, summary.windows_computed)
        session.close()
    assert_same_frames(storage / "bytes", in_process, range(1003, 1008))
    assert_same_frames(storage / "bytes2", in_process, range(1003, 1008))
    stages = {(e.pass_number, e.stage) for e in events}
    assert {(1, "flow"), (1, "restore"), (2, "restore"), (0, "write")} <= stages


def test_path_transport_gives_the_in_process_frames(
    server, storage: Path, in_process: Path
) -> None:
    address, _ = server
    with Client(address) as client:
        session = open_clip(client)
        summary = session.restore_paths(
            1003,
            1007,
            input=str(storage / "in/plate.%04d.exr"),
            output=str(storage / "paths/plate.####.exr"),
        )
        session.close()
    assert len(summary.written) == 5
    assert_same_frames(storage / "paths", in_process, range(1003, 1008))


def test_aovs_come_back_as_files_of_their_own(server, storage: Path, in_process: Path) -> None:
    address, _ = server
    with Client(address) as client:
        session = open_clip(client)
        with pytest.raises(ValueError, match="placeholder"):
            session.restore_files(
                1004,
                1005,
                input=str(storage / "in/plate.####.exr"),
                output=str(storage / "x/plate.####.exr"),
                aov_output=str(storage / "x/mask.####.exr"),
            )
        session.restore_files(
            1004,
            1005,
            input=str(storage / "in/plate.####.exr"),
            output=str(storage / "split/plate.####.exr"),
            aov_output=str(storage / "split/plate_{aov}.####.exr"),
        )
        session.close()
    for f in (1004, 1005):
        whole_info, whole = read_pixels(in_process / f"plate.{f}.exr")
        picture_info, picture = read_pixels(storage / f"split/plate.{f}.exr")
        assert picture_info.channels == ("R", "G", "B", "A")
        assert np.allclose(picture, whole[:, :, :4], rtol=2**-10, atol=1e-5)
        column = {name: i for i, name in enumerate(whole_info.channels)}
        for aov, channel in (("mask", "rrtn_mask.Y"), ("repair", "rrtn_repair.Y")):
            info, grey = read_pixels(storage / f"split/plate_{aov}.{f}.exr")
            assert info.channels == ("R", "G", "B")
            for c in range(3):
                assert np.allclose(grey[:, :, c], whole[:, :, column[channel]], atol=1e-5)
        info, motion = read_pixels(storage / f"split/plate_motion.{f}.exr")
        assert sorted(info.channels) == ["backward.u", "backward.v", "forward.u", "forward.v"]
        for i, name in enumerate(info.channels):  # EXR stores channels sorted by name
            assert np.allclose(motion[:, :, i], whole[:, :, column[name]], atol=1e-4)


def test_raw_planes_come_back_as_the_files_do(server, storage: Path, in_process: Path) -> None:
    address, _ = server
    frames = {f: read_pixels(storage / f"in/plate.{f}.exr")[1] for f in range(1001, 1011)}
    with Client(address) as client:
        session = open_clip(client)
        restored, channels, _ = session.restore_arrays(
            1003, 1007, frames, channels=("R", "G", "B", "A")
        )
        session.close()
    info, expected = read_pixels(in_process / "plate.1005.exr")
    assert channels == (
        "R",
        "G",
        "B",
        "A",
        "rrtn_mask.Y",
        "rrtn_repair.Y",
        "forward.u",
        "forward.v",
        "backward.u",
        "backward.v",
    )
    assert set(channels) == set(info.channels)  # the file lists them in OIIO's order
    by_name = restored[1005][..., [channels.index(c) for c in info.channels]]
    # the file stores the picture as half floats
    assert np.allclose(by_name, expected, rtol=2**-10, atol=1e-5)


def test_two_sessions_at_once(server, storage: Path, in_process: Path) -> None:
    address, _ = server
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with Client(address) as client:
                session = open_clip(client, name=name)
                session.restore_files(
                    1003,
                    1007,
                    input=str(storage / "in/plate.####.exr"),
                    output=str(storage / name / "plate.####.exr"),
                )
                session.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_same_frames(storage / "one", in_process, range(1003, 1008))
    assert_same_frames(storage / "two", in_process, range(1003, 1008))


def test_cancel_mid_range_then_restore_again(server, storage: Path) -> None:
    address, service = server
    cancel = Cancel()

    def progress(event) -> None:
        if event.stage == "restore":
            cancel.cancel()

    with Client(address) as client:
        session = open_clip(client, window=4, overlap=2)
        with pytest.raises(ServerError) as info:
            session.restore_files(
                1001,
                1010,
                input=str(storage / "in/plate.####.exr"),
                output=str(storage / "cancelled/plate.####.exr"),
                progress=progress,
                cancel=cancel,
            )
        assert info.value.code == grpc.StatusCode.CANCELLED
        assert not (storage / "cancelled").exists()
        deadline = time.monotonic() + 30  # the server stops within one step
        while any(s.busy for s in service.sessions()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        summary = session.restore_files(
            1004,
            1005,
            input=str(storage / "in/plate.####.exr"),
            output=str(storage / "after/plate.####.exr"),
        )
        assert list(summary.frames) == [1004, 1005]
        session.close()


def test_deadline_is_honoured(server, storage: Path) -> None:
    address, service = server
    with Client(address, timeout=0.5) as client:
        session = open_clip(client, max_passes=4, stop_psnr=1000.0)
        with pytest.raises(ServerError) as info:
            session.restore_files(
                1001,
                1010,
                input=str(storage / "in/plate.####.exr"),
                output=str(storage / "late/plate.####.exr"),
            )
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 30
    while any(s.busy for s in service.sessions()):
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        ("unknown session", grpc.StatusCode.NOT_FOUND, "no session 'nope'"),
        ("frames outside", grpc.StatusCode.INVALID_ARGUMENT, "outside the session's clip"),
        ("colour space", grpc.StatusCode.INVALID_ARGUMENT, "colour space 'Linear 709'"),
        ("traversal", grpc.StatusCode.PERMISSION_DENIED, "outside the folders"),
        ("bad frame", grpc.StatusCode.INVALID_ARGUMENT, "frame 1002 is 33x32"),
        ("bad window", grpc.StatusCode.INVALID_ARGUMENT, "window must be a whole number from 3"),
        ("raw aov files", grpc.StatusCode.INVALID_ARGUMENT, "aov_files needs FILE replies"),
    ],
)
def test_errors_have_the_right_status(
    server, storage: Path, tmp_path: Path, call: str, code: grpc.StatusCode, message: str
) -> None:
    address, service = server
    with Client(address) as client, pytest.raises(ServerError) as info:  # noqa: PT012
        if call == "unknown session":
            from rrtn_plugin.client.library import Session

            Session(client, "nope", 1, 2).close()
        elif call == "frames outside":
            open_clip(client).restore_paths(
                990,
                1000,
                input=str(storage / "in/plate.####.exr"),
                output=str(storage / "x/plate.####.exr"),
            )
        elif call == "colour space":
            open_clip(client, input_colorspace="Linear 709")
        elif call == "traversal":
            open_clip(client).restore_paths(
                1003,
                1004,
                input=str(storage / "in/plate.####.exr"),
                output=str(storage / "in" / ".." / ".." / "escape" / "plate.####.exr"),
            )
        elif call == "bad frame":
            exr_sequence(tmp_path, range(1001, 1011), size=(40, 32))
            exr_sequence(tmp_path, range(1002, 1003), size=(33, 32))
            open_clip(client).restore_files(
                1003,
                1004,
                input=str(tmp_path / "plate.####.exr"),
                output=str(tmp_path / "o/plate.####.exr"),
            )
        elif call == "bad window":
            open_clip(client, window=2)
        elif call == "raw aov files":  # a request the client library never makes
            session = open_clip(client)
            start = pb.RestoreStart(
                session_id=session.id,
                first_frame=1003,
                last_frame=1003,
                bytes=pb.BytesTransport(reply_encoding=pb.FRAME_ENCODING_RAW, aov_files=True),
            )
            client._call(
                lambda request, **kw: list(client.stub.Restore(iter([request]), **kw)),
                pb.RestoreRequest(start=start),
            )
    assert info.value.code == code
    assert message in info.value.message
    with Client(address) as client:  # the server carries on
        assert client.info().version
    for session in service.sessions():
        service.close(session.id)


def test_over_budget_is_resource_exhausted(server) -> None:
    address, service = server
    with Client(address) as client:
        sessions = [
            open_clip(client) for _ in range(service.limits.max_sessions - len(service.sessions()))
        ]
        with pytest.raises(ServerError) as info:
            open_clip(client)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        listed = client.sessions()
        assert len(listed.sessions) == 4
        assert listed.memory_budget_bytes == 1 << 30
        for s in sessions:
            s.close()


def test_idle_sessions_are_closed(small_model: RRTN) -> None:
    service = RestoreService(
        [ServedModel("small", small_model)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30, idle_timeout=0.2),
    )
    running = start_server(service, address="127.0.0.1:0")
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            session = open_clip(client)
            assert len(client.sessions().sessions) == 1
            time.sleep(0.3)
            assert service.reap_idle() == [session.id]
            with pytest.raises(ServerError) as info:
                session.close()
            assert info.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        running.stop()


def test_token_unix_socket_health_and_reflection(small_model: RRTN, tmp_path: Path) -> None:
    service = RestoreService(
        [ServedModel("small", small_model)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30),
    )
    address = f"unix://{tmp_path}/rrtn.sock"
    running = start_server(service, address=address, security=ServerSecurity(token="s3cret"))
    try:
        with Client(address) as client, pytest.raises(ServerError) as info:
            client.info()
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
        with Client(address, token="wrong") as client, pytest.raises(ServerError):
            client.sessions()
        with Client(address, token="s3cret") as client:
            assert client.info().models[0].name == "small"
        with grpc.insecure_channel(address) as channel:  # health needs no token
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="rrtn.v1.Restorer")
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            reply = next(
                reflection.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                    metadata=(("authorization", "Bearer s3cret"),),
                )
            )
            names = {s.name for s in reply.list_services_response.service}
            assert "rrtn.v1.Restorer" in names
    finally:
        running.stop()


def test_listening_beyond_loopback_needs_a_token(small_model: RRTN) -> None:
    service = RestoreService(
        [ServedModel("small", small_model)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30),
    )
    assert all(map(is_loopback, ["127.0.0.1:1", "[::1]:1", "localhost:1", "unix:///x"]))
    assert not is_loopback("0.0.0.0:50051")
    with pytest.raises(RRTNError, match="without a token"):
        start_server(service, address="0.0.0.0:0")
    running = start_server(service, address="0.0.0.0:0", security=ServerSecurity(token="t"))
    running.stop()


def test_tls(small_model: RRTN, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    service = RestoreService(
        [ServedModel("small", small_model)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30),
    )
    running = start_server(
        service, address="127.0.0.1:0", security=ServerSecurity(tls_cert=cert, tls_key=key)
    )
    try:
        with Client(f"127.0.0.1:{running.port}", root_certificates=cert.read_bytes()) as c:
            assert c.info().version
        with Client(f"127.0.0.1:{running.port}", timeout=5) as plain, pytest.raises(ServerError):
            plain.info()
    finally:
        running.stop()


def test_cli_restore_through_a_server(server, storage: Path, in_process: Path) -> None:
    from rrtn_plugin.cli import main

    address, _ = server
    for transport in ("bytes", "paths"):
        out = storage / f"cli-{transport}"
        assert (
            main(
                [
                    "restore",
                    str(storage / "in/plate.####.exr"),
                    str(out / "plate.####.exr"),
                    "--frames",
                    "1003-1007",
                    "--handles",
                    "10",
                    "--server",
                    address,
                    "--transport",
                    transport,
                    "--input-colorspace",
                    "lin_rec709",
                    "--aovs",
                    "mask,repair,motion",
                    "--window",
                    "6",
                    "--overlap",
                    "3",
                    "--max-passes",
                    "2",
                    "--stop-psnr",
                    "100",
                ]
            )
            == 0
        )
        assert_same_frames(out, in_process, range(1003, 1008))


def test_client_needs_only_grpc_protobuf_numpy() -> None:
    blocked = ["torch", "torchvision", "OpenImageIO", "PyOpenColorIO", "fileseq", "safetensors"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import rrtn_plugin.client.library as c\n"
        "print(c.frame_path('/a/s.####.exr', 7), c.frame_path('/a/s.%03d.exr', 7))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["/a/s.0007.exr", "/a/s.007.exr"]
    assert frame_path("s.@@.dpx", 3) == Path("s.03.dpx")
    assert sequence_pattern("/a/plate_v2.01001.exr") == "/a/plate_v2.#####.exr"
    with pytest.raises(ValueError, match="no frame number"):
        sequence_pattern("/a/plate.exr")


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, str(repo / "proto" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = tmp_path / "rrtn_plugin" / "protocol" / "rrtn" / "v1"
    for path in sorted(generated.iterdir()):
        committed = repo / "rrtn_plugin" / "protocol" / "rrtn" / "v1" / path.name
        assert committed.read_text() == path.read_text(), f"{path.name}: run proto/generate.py"


def test_a_models_own_pass_count_applies_when_the_client_asks_for_none(small_model: RRTN) -> None:
    service = RestoreService(
        [ServedModel("small", small_model, max_passes=1)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30),
    )
    running = start_server(service, address="127.0.0.1:0")
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            info = client.info()
            assert next(o for o in info.options if o.name == "max_passes").default == "1"
            unasked = client.open_session(first_frame=1, last_frame=6, width=32, height=24)
            asked = client.open_session(
                first_frame=1, last_frame=6, width=32, height=24, max_passes=3
            )
            passes = {s.id: s.spec.options.max_passes for s in service.sessions()}
            assert passes == {unasked.id: 1, asked.id: 3}
    finally:
        running.stop()


def test_advertised_option_ranges_are_the_ones_enforced(server) -> None:
    address, _ = server
    with Client(address) as client:
        advertised = {o.name: o for o in client.info().options}
    served = [spec for spec in OPTIONS if spec.served]
    assert {spec.name for spec in served} == {
        *("window", "overlap", "max_passes", "stop_psnr", "flow_max_pixels", "tile", "precision"),
        *("cuts", "tone_guard", "repair_mode", "repair_strength"),
    }
    assert {name: advertised[name].default for name in (s.name for s in served)} == {
        "window": "30",
        "overlap": "",  # unset: half the window
        "max_passes": "4",
        "stop_psnr": "43.0",
        "flow_max_pixels": "1048576",
        "tile": "",  # unset: chosen from the memory budget
        "precision": "fp32",
        "cuts": "true",
        "tone_guard": "deflicker",
        "repair_mode": "full",
        "repair_strength": "1.0",
    }
    assert advertised["cuts"].type == "bool"
    assert list(advertised["repair_mode"].choices) == ["full", "defects"]
    assert list(advertised["tone_guard"].choices) == ["off", "keep", "deflicker"]
    assert "fp32" in advertised["precision"].choices
    assert set(advertised["precision"].choices) <= {"fp32", "bf16", "fp16"}
    assert (advertised["max_passes"].minimum, advertised["max_passes"].maximum) == (1, 8)
    widest = RestoreOptions(window=120)  # room for the widest overlap
    for spec in served:
        if spec.type in (str, bool):
            continue
        option = advertised[spec.name]
        step = spec.step if spec.type is int else 0.5
        for inside in (option.minimum, option.maximum):
            options_from({spec.name: spec.type(inside)}, widest)
        for outside in (option.minimum - step, option.maximum + step):
            with pytest.raises(RRTNError, match=f"^{spec.name} must be"):
                options_from({spec.name: spec.type(outside)}, widest)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_passes": 2**31 - 1}, "max_passes must be a whole number from 1 to 8, got "),
        ({"max_passes": 0}, "max_passes must be a whole number from 1 to 8, got 0"),
        ({"window": 121}, "window must be a whole number from 3 to 120, got 121"),
        ({"window": 2}, "window must be a whole number from 3 to 120, got 2"),
        ({"overlap": 6}, "overlap must be a whole number from 0 to 119, below window (6), got 6"),
        ({"stop_psnr": -1.0}, "stop_psnr must be inf or a number from 0 to 1000, got -1.0"),
        ({"tile": 100}, "tile must be 0 or a multiple of 16 from 128 to 8192, got 100"),
        ({"flow_max_pixels": 100}, "flow_max_pixels must be a whole number from 16384"),
        ({"precision": "fp64"}, "precision must be one of fp32, bf16, fp16, got 'fp64'"),
        ({"repair_mode": "all"}, "repair_mode must be one of full, defects, got 'all'"),
        ({"tone_guard": "on"}, "tone_guard must be one of off, keep, deflicker, got 'on'"),
        ({"repair_strength": 1.5}, "repair_strength must be a number from 0 to 1, got 1.5"),
    ],
)
def test_open_session_refuses_options_out_of_range(
    server, options: dict[str, object], message: str
) -> None:
    address, service = server
    before = {s.id for s in service.sessions()}
    with Client(address) as client, pytest.raises(ServerError) as refused:
        open_clip(client, **options)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith(message)
    assert {s.id for s in service.sessions()} == before


def test_open_session_takes_the_special_values(server) -> None:
    address, service = server
    with Client(address) as client:
        session = open_clip(
            client, max_passes=8, stop_psnr=math.inf, tile=0, flow_max_pixels=0, overlap=0
        )
        try:
            (opened,) = [s for s in service.sessions() if s.id == session.id]
            options = opened.spec.options
            assert (options.max_passes, options.stop_psnr) == (8, math.inf)
            assert (options.tile, options.flow_max_pixels, options.overlap) == (0, None, 0)
        finally:
            session.close()


def test_a_cancelled_call_stops_streaming_without_waiting_for_the_step() -> None:
    """The stream answers a cancellation at once, and its worker sees it at its next step."""
    from rrtn_plugin.server.servicer import _run_in_thread

    cancelled, step_done, worker_saw = threading.Event(), threading.Event(), threading.Event()

    def work(progress, should_stop) -> Iterator[object]:
        progress(Progress(0, "read", 0, 1, frame=1))
        step_done.wait(10)  # a long step that checks nothing
        if should_stop():
            worker_saw.set()
        check_cancel(should_stop)
        yield "never reached"

    stream = _run_in_thread(work, cancelled.is_set)
    assert next(stream).progress.stage == "read"
    cancelled.set()
    started = time.perf_counter()
    with pytest.raises(RRTNError) as info:
        next(stream)
    assert info.value.kind is ErrorKind.CANCELLED
    assert time.perf_counter() - started < 2  # not the 10 s the step takes
    step_done.set()
    assert worker_saw.wait(10)


def test_a_stream_given_up_stops_its_worker() -> None:
    """The client went away (gRPC closes the stream): the work's should_stop turns true."""
    from rrtn_plugin.server.servicer import _run_in_thread

    worker_saw = threading.Event()

    def work(progress, should_stop) -> Iterator[object]:
        progress(Progress(0, "write", 0, 2, frame=1))
        deadline = time.monotonic() + 10
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        if should_stop():
            worker_saw.set()
        return iter(())

    stream = _run_in_thread(work, lambda: False)
    next(stream)
    stream.close()
    assert worker_saw.wait(10)


def test_a_cancelled_restore_leaves_its_session_free(server, storage: Path) -> None:
    """Cancelled while writing, either transport stops before the next frame and lets go of
    the session, as does a reply stream given up part-way."""
    _, service = server
    session = service.open(
        SessionSpec(
            first_frame=1001,
            last_frame=1010,
            width=40,
            height=32,
            input_colorspace="lin_rec709",
            options=RestoreOptions(**SETTINGS),
        )
    )
    frames = [1004, 1005, 1006]
    writes: list[int | None] = []

    def progress(event: Progress) -> None:
        if event.stage == "write":
            writes.append(event.frame)

    def stop() -> bool:
        return len(writes) >= 2

    try:
        with pytest.raises(RRTNError) as info:
            service.restore_paths(
                session,
                frames,
                source=str(storage / "in/plate.####.exr"),
                target=str(storage / "cancel-paths/plate.####.exr"),
                progress=progress,
                should_stop=stop,
            )
        assert info.value.kind is ErrorKind.CANCELLED
        assert writes == [1004, 1005]
        assert not session.lock.locked()
        assert not session.busy
        written = sorted(p.name for p in (storage / "cancel-paths").iterdir())
        assert written == ["plate.1004.exr", "plate.1005.exr"]

        for f in service.frames_needed(session, frames, {}):
            data = (storage / f"in/plate.{f}.exr").read_bytes()
            service.accept_frame(session, f, str(f), data)
        writes.clear()
        replies = service.restore_given(
            session, frames, progress=progress, should_stop=stop, raw_reply=False
        )
        with pytest.raises(RRTNError) as info:
            for _ in replies:
                pass
        assert info.value.kind is ErrorKind.CANCELLED
        assert writes == [1004, 1005]
        assert not session.lock.locked()

        replies = service.restore_given(
            session, frames, progress=lambda e: None, should_stop=lambda: False, raw_reply=True
        )
        frame, _, _ = next(replies)
        assert frame == 1004
        assert session.lock.locked()
        replies.close()
        assert not session.lock.locked()
        assert not session.busy
    finally:
        service.close(session.id)
