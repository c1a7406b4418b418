"""`python -m bot`: local generation through the engine process, and refusals.

Every run that reaches the engine spawns an engine process (a torch import), so only
a few do: one real `python -m bot imagine` subprocess and a few in-process `main()`
calls. Bad input is refused before any engine starts, so those cases are quick.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main


def png_parameters(path: Path) -> str:
    with Image.open(path) as png:
        return png.info["parameters"]


def write_picture(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def assert_one_error_line(capfd: pytest.CaptureFixture[str], *expected: str) -> None:
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0]


def test_imagine_subprocess_writes_a_png_with_the_configured_model(
    config_file: Path, tmp_path: Path
) -> None:
    options = ["--config", str(config_file), "--seed", "7", "--steps", "2", "--negative", "blurry"]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "imagine", "a red fox", *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # Default output: ./atelier-<seed>.png, its path alone on stdout.
    assert result.stdout == "atelier-7.png\n"
    assert "Traceback" not in result.stderr
    output = tmp_path / "atelier-7.png"
    with Image.open(output) as png:
        assert png.size == (64, 64)  # the size configured for the model
    assert png_parameters(output) == (
        "a red fox\nNegative prompt: blurry\n"
        "Steps: 2, Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 64x64, Model: tiny"
    )


def test_img2img_from_a_model_path_names_the_folder(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # No config file at all: a model path and the built-in defaults are enough.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATELIER_CONFIG", raising=False)
    model = shutil.copytree(tiny_model_dir, tmp_path / "my-model")
    source = write_picture(tmp_path / "source.png", (96, 64), (200, 30, 30))
    out = tmp_path / "varied.png"
    files = ["--model", str(model), "--image", str(source), "--out", str(out)]
    values = ["--strength", "0.5", "--steps", "4", "--seed", "3"]
    code = main(["imagine", "a blue fox", *files, *values])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert captured.out == f"{out}\n"
    parameters = png_parameters(out)
    assert "Model: my-model" in parameters
    assert "Denoising strength: 0.5" in parameters
    # Without --width/--height the picture keeps the input's size.
    assert "Size: 96x64" in parameters
    with Image.open(out) as png:
        assert png.size == (96, 64)


def test_inpaint_repaints_only_the_white_part_of_the_mask(
    config_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = write_picture(tmp_path / "source.png", (64, 64), (10, 120, 200))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # repaint the left half only
    mask.save(tmp_path / "mask.png")
    out = tmp_path / "inpainted.png"
    files = ["--image", str(source), "--mask", str(tmp_path / "mask.png"), "--out", str(out)]
    code = main(["imagine", "a red hat", "--config", str(config_file), *files, "--steps", "2"])
    assert code == 0, capfd.readouterr().err
    assert "Model: tiny" in png_parameters(out)
    with Image.open(out) as result, Image.open(source) as original:
        kept = result.convert("RGB").crop((32, 0, 64, 64))
        assert kept.tobytes() == original.convert("RGB").crop((32, 0, 64, 64)).tobytes()
        assert result.crop((0, 0, 32, 64)).tobytes() != original.crop((0, 0, 32, 64)).tobytes()


def test_a_folder_that_is_not_a_model_is_bad_input(
    config_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{ not json")
    out = tmp_path / "never.png"
    code = main(
        [
            "imagine",
            "a cat",
            "--config",
            str(config_file),
            "--model",
            str(broken),
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert_one_error_line(capfd, "broken-model")
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model", "/no/such/model"], "unknown model '/no/such/model'"),
        (["--model", "nosuch"], "not a configured model (tiny)"),
        (["--steps", "-5"], "steps must be between 1 and 50 (got -5)"),
        (["--width", "4000"], "width must be between 64 and 1024"),
        (["--cfg", "nan"], "cfg must be a number"),
        (["--seed", "-1"], "seed must be between 0"),
        (["--sampler", "Magic"], "unknown sampler 'Magic'"),
        (["--mask", "mask.png"], "--mask needs --image"),
        (["--strength", "0.5"], "--strength needs --image"),
        (["--image", "notes.txt"], "not a picture"),
        (["--image", "missing.png"], "--image: cannot read missing.png"),
        (["--image", "picture.png", "--strength", "2"], "strength must be between"),
        (["--out", "no-such-folder/x.png"], "--out: the folder no-such-folder does not exist"),
        (["--out", "."], "--out: . is a folder"),
        (["--config", "missing.toml"], "missing.toml: config file not found"),
        (["--config", "broken.toml"], "broken.toml: not valid TOML"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    extra: list[str],
    expected: str,
    config_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("shopping list: eggs, milk\n")
    (tmp_path / "broken.toml").write_text("[engine\n")
    write_picture(tmp_path / "picture.png", (64, 64), (0, 0, 0))
    before = sorted(tmp_path.iterdir())
    code = main(["imagine", "a red fox", "--config", str(config_file), *extra])
    assert code == 2
    assert_one_error_line(capfd, expected)
    assert sorted(tmp_path.iterdir()) == before  # no picture written


def test_no_config_and_no_model_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATELIER_CONFIG", raising=False)
    assert main(["imagine", "a red fox"]) == 2
    assert_one_error_line(capfd, "no model: pass --model")


def test_empty_prompt_is_bad_input(config_file: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["imagine", "   ", "--config", str(config_file)]) == 2
    assert_one_error_line(capfd, "the prompt is empty")


def test_run_refuses_a_missing_or_adapterless_config(
    config_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(tmp_path / "absent.toml")]) == 2
    assert_one_error_line(capfd, "absent.toml: config file not found")
    assert main(["run", "--config", str(config_file)]) == 2
    assert_one_error_line(capfd, "no adapter enabled")


def test_usage_errors_exit_2(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["imagine", "a red fox", "--steps", "many"])
    assert exited.value.code == 2
    assert "invalid int value: 'many'" in capfd.readouterr().err


def test_a_launcher_script_without_a_main_guard_works(config_file: Path, tmp_path: Path) -> None:
    """The engine process does not re-run the caller's script (multiprocessing's spawn
    would, and this script would then start itself again)."""
    out = tmp_path / "fox.png"
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "from bot.cli import main\n"
        f"raise SystemExit(main(['imagine', 'a fox', '--config', {str(config_file)!r}, "
        f"'--steps', '1', '--seed', '3', '--out', {str(out)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, str(launcher)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "Seed: 3" in png_parameters(out)
