"""The rrtn-plugin command: demo, info, one-line errors, and arguments made from the engine's
option descriptions."""

from __future__ import annotations

import argparse
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rrtn_plugin import __version__
from rrtn_plugin.cli import info as info_command
from rrtn_plugin.cli import main
from rrtn_plugin.cli.arguments import job_settings, restore_options
from rrtn_plugin.cli.demo import DEMO_PASSES
from rrtn_plugin.cli.main import EXIT_CODES, EXIT_STATUS, build_parser
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.frames.restore import JobSettings
from rrtn_plugin.model import build_identity_rrtn
from rrtn_plugin.options import OPTIONS, RestoreOptions
from rrtn_plugin.weights import PASSES as BUNDLED_PASSES


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


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser (``farm openjd`` as "farm openjd"), found through argparse."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in subcommand_parsers(sub).items()})
    return found


def test_every_engine_option_is_described() -> None:
    assert [spec.name for spec in OPTIONS] == [f.name for f in dataclasses.fields(RestoreOptions)]
    for spec in OPTIONS:
        assert spec.help, spec.name
        assert spec.type in (int, float, str, bool), spec.name
        spec.validate(spec.default, RestoreOptions())  # the default is allowed


def test_restore_arguments_default_to_the_engines_defaults() -> None:
    parser = build_parser()
    commands = subcommand_parsers(parser)
    restore = commands["restore"]
    actions = {a.dest: a for a in restore._actions}
    for spec in OPTIONS:
        if not spec.cli:
            assert spec.name not in actions
            continue
        action = actions[spec.name]
        switch_off = [f"--no-{spec.flag[2:]}"] if spec.type is bool and spec.default else []
        assert action.option_strings == [spec.flag, *switch_off]
        if spec.per_model or spec.default is None or switch_off:  # the model's, None, on
            assert action.default is None
        else:
            assert spec.from_front(action.default) == spec.default
        assert list(action.choices or ()) == list(spec.choices)
    # Nothing given: the engine's defaults (with a model of one's own: no bundled pass count).
    given = parser.parse_args(["restore", "in.####.exr", "out.####.exr", "--model", "m.pth"])
    assert restore_options(given) == RestoreOptions()
    assert job_settings(given) == JobSettings()
    bundled = parser.parse_args(["restore", "in.####.exr", "out.####.exr"])
    assert restore_options(bundled).max_passes == BUNDLED_PASSES
    demo = parser.parse_args(["demo", "--model", "m.pth"])
    assert restore_options(demo, passes=DEMO_PASSES) == RestoreOptions(max_passes=DEMO_PASSES)
    # The special values: 0 flow pixels is full size, 0 tile never tiles, GiB are bytes.
    special = parser.parse_args(
        [
            *("restore", "in.####.exr", "out.####.exr", "--flow-max-pixels", "0"),
            *("--tile", "0", "--memory-budget", "1.5", "--stop-psnr", "inf"),
        ]
    )
    options = restore_options(special)
    assert (options.flow_max_pixels, options.tile, options.memory_budget) == (None, 0, 3 << 29)
    assert options.stop_psnr == math.inf


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-passes", "2147483647"], "max_passes must be a whole number from 1 to 8, got "),
        (["--window", "2"], "window must be a whole number from 3 to 120, got 2"),
        (["--window", "8", "--overlap", "8"], "overlap must be a whole number from 0 to 119"),
        (["--stop-psnr", "nan"], "stop_psnr must be inf or a number from 0 to 1000, got nan"),
        (["--tile", "100"], "tile must be 0 or a multiple of 16 from 128 to 8192, got 100"),
        (["--flow-max-pixels", "100"], "flow_max_pixels must be a whole number from 16384"),
    ],
)
def test_out_of_range_options_fail_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    out = tmp_path / "out" / "o.####.exr"
    assert main(["restore", str(tmp_path / "missing.####.exr"), str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"rrtn-plugin: error: {message}")
    assert not out.parent.exists()


def test_every_error_kind_has_an_exit_code_that_the_help_lists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = {code for code, _ in EXIT_STATUS}
    for kind in ErrorKind:

        def fail(args: argparse.Namespace, kind: ErrorKind = kind) -> int:
            raise RRTNError(f"failed: {kind.value}", kind=kind)

        monkeypatch.setattr(info_command, "cmd_info", fail)
        assert main(["info", "x.pth"]) == EXIT_CODES[kind]
        assert capsys.readouterr().err == f"rrtn-plugin: error: failed: {kind.value}\n"
        assert EXIT_CODES[kind] in listed
    assert set(EXIT_CODES) == set(ErrorKind)
    assert EXIT_CODES[ErrorKind.PERMISSION_DENIED] == 2


def test_help_gives_every_option_a_text_and_a_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    for name, command in subcommand_parsers(parser).items():
        formatter = command._get_formatter()
        for action in command._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            shown = " ".join(formatter._expand_help(action).split())
            if action.option_strings and action.nargs != 0 and not action.required:
                assert "default" in shown, f"{name} {action.option_strings[0]}: {shown}"
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "exit status:" in top
    for code, _ in EXIT_STATUS:
        assert f"\n  {code} " in top
    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    restore = capsys.readouterr().out
    assert "shot.%04d.dpx" in restore
    assert "%%" not in restore
    assert "a whole number from 1 to 8 (default: 4; 1 with the bundled model)" in " ".join(
        restore.split()
    )
    assert "(default: half the window)" in " ".join(restore.split())


def test_commands_leave_gradients_alone_and_run_as_a_module(golden_dir: Path) -> None:
    assert torch.is_grad_enabled()
    assert main(["info", str(golden_dir / "checkpoint.pth")]) == 0
    assert torch.is_grad_enabled()  # the engine runs under inference_mode; nothing global
    ran = subprocess.run(
        [sys.executable, "-m", "rrtn_plugin.cli", "--version"], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"rrtn-plugin {__version__}"
