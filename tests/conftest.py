"""Shared fixtures: the reference material in ../shared, small clips and networks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

# oneDNN picks convolution kernels by CPU (and with AVX-512 rounds differently from the golden
# run's kernels). Capped at AVX2 the tests run the same kernels on every machine with AVX2, so
# their figures do not depend on the CPU. It also leaves oneDNN without bf16 kernels, which
# test_engine relies on. Set before torch loads oneDNN; it only changes which kernels run.
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")

import pytest
import torch

from rrtn_plugin.model import RRTN, RRTNConfig, build_rrtn, load_rrtn

if TYPE_CHECKING:
    from rrtn_plugin.server.service import SessionSpec

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RRTN_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden" / "rrtn-public"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not (GOLDEN / "checkpoint.pth").is_file():
        pytest.skip(f"golden data not found at {GOLDEN} (../shared is absent; set RRTN_SHARED)")
    return GOLDEN


@pytest.fixture(scope="session")
def golden_model(golden_dir: Path) -> RRTN:
    """The reference's network with seeded random weights, loaded from the official format."""
    # Its weights need no gradients: no graph is built, and no global autograd state is set
    # that later tests would inherit.
    return load_rrtn(golden_dir / "checkpoint.pth").requires_grad_(False)


@pytest.fixture(scope="session")
def small_model() -> RRTN:
    """A narrow, shallow RRTN with seeded random weights: the same code paths, fast on CPU."""
    torch.manual_seed(7)
    config = RRTNConfig(
        num_feat=8,
        embed_dim=32,
        depths=(1, 1),
        num_heads=2,
        mlp_hidden=32,
        extract_blocks=1,
        reconstruct_blocks=1,
        flow_updates=3,
    )
    model = build_rrtn(config)
    with torch.no_grad():  # make the untrained residual paths do something measurable
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


@pytest.fixture(scope="session")
def identity_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small network that returns its input exactly, saved in our format (fast plumbing)."""
    from rrtn_plugin.model import build_identity_rrtn, save_rrtn

    torch.manual_seed(3)
    config = RRTNConfig(
        num_feat=8,
        embed_dim=32,
        depths=(1,),
        num_heads=2,
        mlp_hidden=16,
        extract_blocks=1,
        reconstruct_blocks=1,
        flow_updates=2,
    )
    path = tmp_path_factory.mktemp("models") / "identity.safetensors"
    save_rrtn(build_identity_rrtn(config), path, metadata={"purpose": "identity for tests"})
    return path


@pytest.fixture(scope="session")
def bundled_server() -> Iterator[str]:
    """A real server on loopback offering the bundled model (as ``rrtn-plugin serve`` does),
    for the host adapters' tests; yields its address."""
    from rrtn_plugin.server.app import start_server
    from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits
    from rrtn_plugin.weights import PASSES, load_bundled

    first, second = load_bundled()
    service = RestoreService(
        [ServedModel("bundled", first, second, max_passes=PASSES)],
        device="cpu",
        limits=ServiceLimits(memory_budget=1 << 30, host_budget=1 << 30),
    )
    running = start_server(service, address="127.0.0.1:0")
    yield f"127.0.0.1:{running.port}"
    running.stop()


@pytest.fixture
def opened_sessions(monkeypatch: pytest.MonkeyPatch) -> list[SessionSpec]:
    """The sessions the in-process servers (``bundled_server``) are asked to open while a test
    runs, as each server made them of the OpenSession request: its checked RestoreOptions,
    AOVs and colour space (what a host's settings became on the wire)."""
    from rrtn_plugin.server.service import RestoreService

    specs: list[SessionSpec] = []
    open_session = RestoreService.open

    def recorded(service: RestoreService, spec: SessionSpec) -> Any:
        specs.append(spec)
        return open_session(service, spec)

    monkeypatch.setattr(RestoreService, "open", recorded)
    return specs


SHARED_FIXTURES = {"golden_dir", "golden_model", "films", "real_films"}
"""Fixtures that read ../shared (and skip, saying so, without it)."""
HOST_MODULES = ("test_host_blender",)
"""Modules that install and run a real host (bpy) in a child process."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs beyond this checkout, so a run can select or leave it out
    (``-m "not host"``); CI runs everything."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SHARED_FIXTURES:
            item.add_marker(pytest.mark.shared)
        if item.module is not None and item.module.__name__.startswith(HOST_MODULES):
            item.add_marker(pytest.mark.host)
            item.add_marker(pytest.mark.network)
        if "compile" in item.name:
            item.add_marker(pytest.mark.compiler)
