"""The rrtn-plugin command: demo, info, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rrtn_plugin.cli import main
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.model import build_identity_rrtn


def test_identity_network_returns_its_input() -> None:
    lq = torch.rand(1, 3, 1, 128, 128) * 2 - 1
    assert torch.equal(build_identity_rrtn()(lq), lq)


def test_demo_restores_with_the_bundled_model_and_writes_a_before_after_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert (
        main(
            [
                "demo",
                "--out",
                str(out),
                "--frames",
                "6",
                "--size",
                "80x64",
                "--max-passes",
                "1",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    info, sheet = read_pixels(out / "before_after.png")
    assert sheet.shape == (4 * 64 + 3 * 4, 4 * 80 + 3 * 4, 1)  # 4 rows x 4 columns
    assert info.format == "uint8"
    text = capsys.readouterr()
    assert "restored 6 frames of 80x64" in text.out
    damaged, restored = (
        float(v)
        for v in text.out.split("damaged ")[1].replace(" dB, restored", "").split(" dB")[0].split()
    )
    assert restored > damaged + 1.0
    assert sorted(p.name for p in out.iterdir()) == ["before_after.png", "damaged", "restored"]
    restored = sorted(p.name for p in (out / "restored").iterdir())
    assert restored == [f"demo.{f}.exr" for f in range(1001, 1007)]
    assert read_pixels(out / "restored" / "demo.1001.exr")[0].channels == (
        "R",
        "G",
        "B",
        "rrtn_mask.Y",
        "rrtn_repair.Y",
    )


def test_info_describes_a_checkpoint(golden_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(golden_dir / "checkpoint.pth")]) == 0
    text = capsys.readouterr().out
    assert "7,493,345 parameters" in text
    assert "depths: (2, 2, 2)" in text


def test_errors_are_one_line_with_an_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("rrtn-plugin: error: checkpoint not found:")


def test_compile_restores_what_eager_restores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path / "demo"),
                "--frames",
                "4",
                "--size",
                "128x128",
                "--max-passes",
                "1",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    plates = str(tmp_path / "demo" / "damaged" / "demo.####.exr")
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        assert (
            main(
                [
                    "restore",
                    plates,
                    str(tmp_path / name / "out.####.exr"),
                    "--device",
                    "cpu",
                    *extra,
                ]
            )
            == 0
        )
    for frame in range(1001, 1005):
        eager = read_pixels(tmp_path / "eager" / f"out.{frame}.exr")[1]
        compiled = read_pixels(tmp_path / "compiled" / f"out.{frame}.exr")[1]
        damaged = read_pixels(tmp_path / "demo" / "damaged" / f"demo.{frame}.exr")[1]
        assert abs(eager - compiled).max() < 1e-3  # half-float files: a step is 2^-11 below 1
        assert abs(eager - compiled).mean() < 1e-5
        assert abs(eager - damaged).mean() > 1e-3
    capsys.readouterr()
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert main(["restore", plates, str(tmp_path / "x" / "out.####.exr"), "--compile"]) == 2
    assert "--compile needs a C++ compiler" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert (
        main(
            [
                "restore",
                plates,
                str(tmp_path / "x" / "out.####.exr"),
                "--compile",
                "--server",
                "localhost:1",
            ]
        )
        == 2
    )
    assert "serve --compile" in capsys.readouterr().err
    # The server refuses before it listens.
    assert main(["serve", "--compile", "--listen", "127.0.0.1:0"]) == 2
    assert "--compile needs a C++ compiler" in capsys.readouterr().err
