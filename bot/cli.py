"""`python -m bot`: start the bot (`run`), write a first config (`init`, see `bot.init`),
or paint one picture locally (`imagine`).

`imagine` goes through the same engine process the bot uses. Bad input (a value out
of range, a file that is not a picture, a model that does not exist or cannot be
loaded, a broken config) exits 2 with one line on stderr and no traceback; an engine
failure that is not the user's fault exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import secrets
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot import logs, redaction
from bot.config import Config, ConfigError, ModelConfig, config_path, load_config
from bot.gpu_check import warn_if_gpu_unused
from bot.init import add_init_arguments, run_init
from bot.validation import (
    SEED_MAX,
    BadInput,
    check_cfg,
    check_seed,
    check_size,
    check_steps,
    check_strength,
    decode_image,
)
from engine.client import EngineClient
from engine.samplers import canonical_sampler
from engine.types import EngineError, ImageSpec, ModelLoadError

PROG = "python -m bot"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "init":
        return run_init(args)
    return _imagine(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Atelier image-generation bot.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="start every chat adapter enabled in the config")
    run.add_argument("--config", metavar="PATH", help="config file (default: ./config.toml)")
    run.add_argument(
        "--log-level",
        type=str.lower,
        choices=logs.LEVELS,
        help=f"default: ${logs.LEVEL_ENV}, else info",
    )
    run.add_argument(
        "--log-format",
        type=str.lower,
        choices=logs.FORMATS,
        help=f"json: one object a line, for collectors (default: ${logs.FORMAT_ENV}, else text)",
    )

    init = commands.add_parser("init", help="write a config.toml for a new admin (asks, or flags)")
    add_init_arguments(init)

    imagine = commands.add_parser("imagine", help="paint one picture locally into a PNG")
    imagine.add_argument("prompt", help="what to paint")
    imagine.add_argument("--model", metavar="NAME|PATH", help="configured model name or path")
    imagine.add_argument("--negative", metavar="TEXT", default="", help="what to avoid")
    imagine.add_argument("--seed", type=int, metavar="N", help="default: random")
    imagine.add_argument("--steps", type=int, metavar="N")
    imagine.add_argument("--cfg", type=float, metavar="F")
    imagine.add_argument("--width", type=int, metavar="W")
    imagine.add_argument("--height", type=int, metavar="H")
    imagine.add_argument("--sampler", metavar="NAME", help='e.g. "Euler a", "DPM++ 2M Karras"')
    imagine.add_argument("--image", metavar="PATH", help="start from this picture (img2img)")
    imagine.add_argument("--strength", type=float, metavar="F", help="how much to change it")
    imagine.add_argument("--mask", metavar="PATH", help="repaint only the white part of --image")
    imagine.add_argument("--out", metavar="PATH", help="default: ./atelier-<seed>.png")
    imagine.add_argument("--config", metavar="PATH", help="config file (optional here)")
    return parser


def _fail(message: object, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# -- run ---------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    try:
        level, json = logs.resolve(args.log_level, args.log_format)
    except ValueError as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    try:
        path, _ = config_path(args.config)
        config = load_config(path, required=True)
        config.require_adapters()
    except ConfigError as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    for token in (config.telegram.token, config.discord.token):
        redaction.register(token)
    logs.configure_logging(level, json=json)
    warn_if_gpu_unused(config)
    from bot import app  # the whole bot (adapters, store...) only when it is started

    try:
        asyncio.run(app.run(config))
    except ConfigError as exc:
        return _fail(redaction.redact(str(exc)), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception:
        # Through logging, whose handlers redact: a traceback may quote a token.
        logging.getLogger("atelier").critical("Atelier stopped on an error", exc_info=True)
        return EXIT_FAILED
    return EXIT_OK


# -- imagine -----------------------------------------------------------------------


@dataclass(frozen=True)
class LocalJob:
    """One checked local generation: what the engine loads, the picture, where it goes."""

    model: str  # configured name, or an absolute path
    spec: ImageSpec
    out: Path


def _imagine(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_imagine_async(args))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


async def _imagine_async(args: argparse.Namespace) -> int:
    try:
        path, named = config_path(args.config)
        config = load_config(path, required=named)
        job = await _prepare(args, config)
    except (BadInput, ConfigError) as exc:
        return _fail(exc, EXIT_BAD_INPUT)

    # The engine's warnings would clutter a one-shot run; its errors still show.
    client = EngineClient(config.engine_settings(), max_batch=1, log_level=logging.ERROR)
    progress = ProgressLine(sys.stderr)
    try:
        await client.start()
        (image,) = await client.generate(
            f"cli-{uuid.uuid4().hex[:12]}", job.model, [job.spec], progress.show
        )
    except ModelLoadError as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    except EngineError as exc:
        return _fail(exc, EXIT_FAILED)
    finally:
        progress.finish()
        await client.close()
    try:
        await asyncio.to_thread(job.out.write_bytes, image.png)
    except OSError as exc:
        return _fail(f"cannot write {job.out}: {exc.strerror or exc}", EXIT_FAILED)
    if image.nsfw:
        print("note: the NSFW classifier flagged this picture", file=sys.stderr)
    print(f"seed {image.seed}", file=sys.stderr)
    print(job.out)
    return EXIT_OK


async def _prepare(args: argparse.Namespace, config: Config) -> LocalJob:
    """Every check that needs no engine, so bad input is refused in a moment."""
    limits = config.limits
    prompt = args.prompt.strip()
    if not prompt:
        raise BadInput("the prompt is empty: say what to paint")
    for what, text in (("prompt", prompt), ("negative prompt", args.negative)):
        if len(text) > limits.max_prompt_chars:
            raise BadInput(
                f"the {what} is {len(text):,} characters; the limit is {limits.max_prompt_chars:,}"
            )
    model, defaults = _resolve_model(args.model, config)

    seed = args.seed if args.seed is not None else secrets.randbelow(SEED_MAX + 1)
    check_seed(seed)
    steps = args.steps if args.steps is not None else defaults.default_steps
    check_steps(steps, limits.max_steps)
    cfg = args.cfg if args.cfg is not None else defaults.default_cfg
    check_cfg(cfg)
    try:
        sampler = canonical_sampler(args.sampler or defaults.sampler)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if args.mask and not args.image:
        raise BadInput("--mask needs --image: the picture whose white-masked part is repainted")
    if args.strength is not None and not args.image:
        raise BadInput("--strength needs --image: it says how much to change that picture")
    strength = args.strength if args.strength is not None else ImageSpec.strength
    check_strength(strength)

    init_image = mask_image = None
    width, height = defaults.width, defaults.height
    if args.image:
        init_image, (width, height) = await _read_picture("--image", args.image, limits.max_side)
    if args.mask:
        mask_image, _ = await _read_picture("--mask", args.mask, limits.max_side)
    width = args.width if args.width is not None else width
    height = args.height if args.height is not None else height
    check_size(width, height, limits.max_side)

    out = Path(args.out) if args.out else Path(f"atelier-{seed}.png")
    if not out.parent.is_dir():
        raise BadInput(f"--out: the folder {out.parent} does not exist")
    if out.is_dir():
        raise BadInput(f"--out: {out} is a folder; name the PNG file to write")
    spec = ImageSpec(
        prompt=prompt,
        negative_prompt=args.negative.strip(),
        seed=seed,
        steps=steps,
        cfg=cfg,
        width=width,
        height=height,
        sampler=sampler,
        init_image=init_image,
        strength=strength,
        mask_image=mask_image,
    )
    return LocalJob(model=model, spec=spec, out=out)


def _resolve_model(given: str | None, config: Config) -> tuple[str, ModelConfig]:
    """A configured name with its defaults, or a path (or hub id) with the default ones."""
    name = given or config.engine.default_model
    if not name:
        raise BadInput("no model: pass --model NAME or PATH, or set [engine] default_model")
    if name in config.models:
        return name, config.models[name]
    # A path on the command line is relative to where the command runs.
    path = Path(name).expanduser()
    if config.is_local(name) or path.exists():
        if not path.exists():
            configured = ", ".join(sorted(config.models)) or "none"
            raise BadInput(
                f"unknown model {name!r}: not a configured model ({configured}) "
                "and no such file or folder"
            )
        return str(path.resolve()), ModelConfig(source=str(path))
    return name, ModelConfig(source=name)  # a hub id: the engine says if it cannot load it


async def _read_picture(option: str, path: str, max_side: int) -> tuple[bytes, tuple[int, int]]:
    """The picture at `path`, checked like an upload and re-encoded as PNG, and its size."""
    try:
        data = await asyncio.to_thread(Path(path).read_bytes)
    except OSError as exc:
        raise BadInput(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return await asyncio.to_thread(_normalise_picture, data, max_side)
    except BadInput as exc:
        raise BadInput(f"{option} {path}: {exc}") from None


def _normalise_picture(data: bytes, max_side: int) -> tuple[bytes, tuple[int, int]]:
    image = decode_image(data, max_side=max_side)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), image.size


class ProgressLine:
    """`painting 3/20` rewritten in place on a terminal; nothing when piped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._open = False

    def show(self, step: int, total: int) -> None:
        if self._enabled:
            self._stream.write(f"\rpainting {step}/{total}")
            self._stream.flush()
            self._open = True

    def finish(self) -> None:
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False
