"""`python -m bot init`: the questions, the checks, the file, and what to do next.

Interactive on a terminal; with `--yes`, or without a terminal, every answer comes from
the flags and the environment (tokens from $TELEGRAM_TOKEN / $DISCORD_TOKEN) and a
missing one is an error. Exit status: 0 written, 2 bad answer or refused token, 1 no
answer from a platform, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO, TypeVar

from bot.config import TelegramConfig, config_path, is_user_id
from bot.init.checks import (
    TelegramBot,
    TokenRefused,
    Unreachable,
    check_discord,
    check_telegram,
)
from bot.init.config_file import PlatformSetup, Setup, TelegramSetup, render, write
from bot.init.models import DEFAULT_MODEL, KNOWN_MODELS, BadModel, ModelChoice, resolve_model
from bot.logs import configure_logging

PLATFORMS = ("telegram", "discord")
TOKEN_ENV = {"telegram": "TELEGRAM_TOKEN", "discord": "DISCORD_TOKEN"}
TOKEN_SOURCE = {
    "telegram": "@BotFather in Telegram: /newbot, or /mybots, API Token",
    "discord": "the Developer Portal: your application, Bot, Reset Token",
}
T = TypeVar("T")


class InitFailed(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="where to write (default: ./config.toml)")
    for platform in PLATFORMS:
        parser.add_argument(
            f"--{platform}",
            action=argparse.BooleanOptionalAction,
            help=f"run on {platform.title()} (token from ${TOKEN_ENV[platform]})",
        )
        parser.add_argument(
            f"--{platform}-admin",
            action="append",
            default=[],
            metavar="ID",
            help=f"a {platform.title()} user id for [admins] (repeatable)",
        )
    parser.add_argument(
        "--model",
        metavar="NAME|HUB_ID|PATH",
        help=f"{', '.join(KNOWN_MODELS)}, a hub id, or a local folder or file "
        f"(default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--storage", metavar="PATH", default="data", help="[storage] path")
    parser.add_argument(
        "--telegram-base-url", metavar="URL", help="a self-hosted Bot API server, ending in /bot"
    )
    parser.add_argument(
        "--write-tokens", action="store_true", help="put the tokens in the config (mode 600)"
    )
    parser.add_argument("--no-check", action="store_true", help="do not ask the platforms")
    parser.add_argument("--force", action="store_true", help="replace an existing config")
    parser.add_argument("--yes", "-y", action="store_true", help="ask nothing: flags and defaults")


def run_init(args: argparse.Namespace) -> int:
    configure_logging(logging.WARNING, json=False)
    path, _ = config_path(args.config)
    asker = Asker(sys.stdin, sys.stdout, interactive=not args.yes and sys.stdin.isatty())
    try:
        Wizard(args, asker, path).run()
    except InitFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except (KeyboardInterrupt, EOFError):
        print("\ninit stopped; nothing was written", file=sys.stderr)
        return 130
    return 0


class Asker:
    """Questions on a terminal; without one (`interactive=False`) every default is taken."""

    def __init__(self, stdin: TextIO, stdout: TextIO, *, interactive: bool) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = interactive

    def say(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def ask(self, question: str, default: str = "") -> str:
        if not self.interactive:
            return default
        shown = f" [{default}]" if default else ""
        self.stdout.write(f"{question}{shown}: ")
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.strip() or default

    def yes(self, question: str, default: bool) -> bool:
        while True:
            answer = self.ask(f"{question} [{'Y/n' if default else 'y/N'}]").lower()
            if not answer:
                return default
            if answer in ("y", "yes", "n", "no"):
                return answer.startswith("y")
            self.say("Answer y or n.")

    def secret(self, question: str) -> str:
        """A line that is not echoed on a terminal."""
        if self.stdin.isatty():
            return getpass.getpass(f"{question}: ", stream=self.stdout).strip()
        return self.ask(question)


class Wizard:
    def __init__(
        self,
        args: argparse.Namespace,
        asker: Asker,
        path: Path,
        *,
        env: Mapping[str, str] = os.environ,
        cwd: Path | None = None,
    ) -> None:
        self.args = args
        self.asker = asker
        self.path = path
        self.env = env
        self.cwd = cwd or Path.cwd()
        self.notes: list[str] = []  # what to do next, said at the end
        self.typed_tokens: list[str] = []  # platforms whose token was typed, not in $ENV

    def run(self) -> None:
        say = self.asker.say
        self._check_target()
        if self.asker.interactive:
            say(f"Setting up Atelier: this writes {self.path}. Ctrl-C stops without writing.")
        platforms = self._platforms()
        telegram = self._telegram() if "telegram" in platforms else None
        discord = self._discord() if "discord" in platforms else None
        model = self._model()
        write_tokens = self._write_tokens()
        setup = Setup(
            model=model,
            telegram=telegram,
            discord=discord,
            storage=self.args.storage,
            write_tokens=write_tokens,
        )
        private = write_tokens and any(p is not None and p.token for p in (telegram, discord))
        try:
            write(self.path, render(setup), private=private)
        except OSError as exc:
            raise InitFailed(f"cannot write {self.path}: {exc.strerror or exc}", 1) from None
        enabled = ", ".join(p.title() for p in platforms)
        say(f"Wrote {self.path}: {enabled}; model {model.name}.")
        if not write_tokens:
            for platform in self.typed_tokens:
                say(f"Before starting, set ${TOKEN_ENV[platform]}: the token is not in the config.")
        if model.from_hub:
            size = f" (about {model.download_gb} GB)" if model.download_gb else ""
            say(
                f"The first start downloads {model.source}{size} into the Hugging Face cache "
                "($HF_HOME, else ~/.cache/huggingface)."
            )
        for note in self.notes:
            say(note)
        say("Start the bot: scripts/run (or python -m bot run).")

    # ---- the steps ------------------------------------------------------------------

    def _check_target(self) -> None:
        if not self.path.parent.is_dir():
            raise InitFailed(f"{self.path.parent}: no such folder")
        if not self.path.exists() or self.args.force:
            return
        if not self.asker.interactive:
            raise InitFailed(f"{self.path} exists; pass --force to replace it")
        if not self.asker.yes(f"{self.path} exists. Replace it?", default=False):
            raise InitFailed(f"{self.path} left as it was", 1)

    def _platforms(self) -> list[str]:
        chosen = {p: getattr(self.args, p) for p in PLATFORMS}
        if any(value is not None for value in chosen.values()):
            platforms = [p for p in PLATFORMS if chosen[p]]
            if not platforms:
                raise InitFailed("no platform: pass --telegram and/or --discord")
            return platforms
        with_token = [p for p in PLATFORMS if self.env.get(TOKEN_ENV[p])]
        if not self.asker.interactive:
            if not with_token:
                raise InitFailed(
                    "no platform: pass --telegram and/or --discord, with the token in "
                    "$TELEGRAM_TOKEN / $DISCORD_TOKEN"
                )
            return with_token
        # Default: the platforms with a token in the environment, else Telegram.
        defaults = with_token or ["telegram"]
        while True:
            asked = {p: self.asker.yes(f"Run on {p.title()}?", p in defaults) for p in PLATFORMS}
            platforms = [p for p in PLATFORMS if asked[p]]
            if platforms:
                return platforms
            self.asker.say("Pick at least one platform.")

    def _telegram(self) -> TelegramSetup:
        base_url = self.args.telegram_base_url or TelegramConfig.base_url
        if not base_url.endswith("/bot"):
            raise InitFailed(f"--telegram-base-url: {base_url!r} must end in /bot, as the default")
        base_file_url = base_url.removesuffix("/bot") + "/file/bot"  # the Bot API's layout

        async def check(token: str) -> TelegramBot:
            return await check_telegram(token, base_url=base_url, base_file_url=base_file_url)

        token, bot = self._checked_token("telegram", check)
        if bot is not None:
            self.asker.say(f"Telegram: the token belongs to @{bot.username} ({bot.name}).")
        admins = self._admins(
            "telegram",
            [],
            "Your Telegram user id, for [admins] (a number; empty: later, /whoami tells it)",
        )
        if not admins:
            who = f"@{bot.username}" if bot is not None else "the bot"
            self.notes.append(
                f"Telegram admins: send /whoami to {who} and put the id in [admins] telegram."
            )
        return TelegramSetup(
            token=token, admins=admins, base_url=base_url, base_file_url=base_file_url
        )

    def _discord(self) -> PlatformSetup:
        token, app = self._checked_token("discord", check_discord)
        owner: list[str] = []
        if app is not None:
            self.asker.say(
                f"Discord: the token belongs to {app.bot_name} (application {app.application_id})."
            )
            self.notes.append(f"Invite the bot to your Discord server: {app.invite_url}")
            if app.owner_id is not None:
                owner = [str(app.owner_id)]
        question = "Discord admin ids, comma-separated"
        if app is not None and owner:
            question += f" (default: {app.owner_name}, the application's owner)"
        admins = self._admins("discord", owner, question)
        if not admins:
            self.notes.append(
                "Discord admins: send /whoami to the bot and put the id in [admins] discord."
            )
        return PlatformSetup(token=token, admins=admins)

    def _checked_token(
        self, platform: str, check: Callable[[str], Awaitable[T]]
    ) -> tuple[str, T | None]:
        """The platform's token, and what the platform says about it (None: not asked)."""
        variable = TOKEN_ENV[platform]
        token = self.env.get(variable, "").strip()
        if token:
            self.asker.say(f"{platform.title()}: using the token in ${variable}.")
        while True:
            if not token:
                token = self._typed_token(platform)
                if not token:
                    return "", None  # only with --no-check
            if self.args.no_check:
                return token, None
            try:
                return token, asyncio.run(check(token))
            except TokenRefused as exc:
                if not self.asker.interactive:
                    raise InitFailed(str(exc)) from None
                self.asker.say(str(exc))
                token = ""
            except Unreachable as exc:
                hint = "try again, or: python -m bot init --no-check"
                raise InitFailed(f"{exc} ({hint})", 1) from None

    def _typed_token(self, platform: str) -> str:
        variable = TOKEN_ENV[platform]
        if not self.asker.interactive:
            if self.args.no_check:
                self.notes.append(f"Set ${variable} before starting: no token was given.")
                return ""
            raise InitFailed(f"--{platform} needs its token in ${variable}")
        while True:
            question = f"{platform.title()} bot token (from {TOKEN_SOURCE[platform]})"
            token = self.asker.secret(question)
            if token:
                if platform not in self.typed_tokens:
                    self.typed_tokens.append(platform)
                return token

    def _admins(self, platform: str, default: list[str], question: str) -> list[str]:
        given = getattr(self.args, f"{platform}_admin")
        if given or not self.asker.interactive:
            admins = given or default
            _check_ids(platform, admins)
            return admins
        while True:
            answer = self.asker.ask(question, ", ".join(default))
            admins = [part.strip() for part in answer.split(",") if part.strip()]
            try:
                _check_ids(platform, admins)
            except InitFailed as exc:
                self.asker.say(str(exc))
                continue
            return admins

    def _model(self) -> ModelChoice:
        config_dir = self.path.absolute().parent
        if self.args.model or not self.asker.interactive:
            given = self.args.model or DEFAULT_MODEL
            try:
                return resolve_model(given, config_dir=config_dir, cwd=self.cwd)
            except BadModel as exc:
                raise InitFailed(f"--model {exc}") from None
        self.asker.say("Which model? (admins can add more later and switch with /model)")
        numbered = list(KNOWN_MODELS.values())
        for number, choice in enumerate(numbered, 1):
            self.asker.say(
                f"  {number}) {choice.name:<13} {choice.summary}: a {choice.gpu_gb}+ GB GPU, "
                f"about {choice.download_gb} GB to download"
            )
        self.asker.say("  or a hub id (owner/name), a local diffusers folder or .safetensors file")
        while True:
            answer = self.asker.ask("Model", "1")
            if answer.isdecimal() and 1 <= int(answer) <= len(numbered):
                return numbered[int(answer) - 1]
            try:
                return resolve_model(answer, config_dir=config_dir, cwd=self.cwd)
            except BadModel as exc:
                self.asker.say(str(exc))

    def _write_tokens(self) -> bool:
        if self.args.write_tokens:
            return True
        if not self.typed_tokens:
            return False
        names = " and ".join(f"${TOKEN_ENV[p]}" for p in self.typed_tokens)
        return self.asker.yes(
            f"Save the token in {self.path.name}, readable only by you? "
            f"(If not, set {names} whenever the bot starts.)",
            default=False,
        )


def _check_ids(platform: str, ids: list[str]) -> None:
    for user_id in ids:
        if not is_user_id(user_id):
            raise InitFailed(
                f"{platform} admin {user_id!r}: a user id is a number; "
                "send /whoami to the bot to get yours"
            )
