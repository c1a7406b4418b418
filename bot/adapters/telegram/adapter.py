"""Telegram adapter: python-telegram-bot events in, neutral commands out, outcomes back.

It runs inside Atelier's own event loop (no `run_polling`), so Telegram and Discord can
share one process. Parsing, validation, queueing and wording live in `bot.commands`;
this module only translates. Here: connecting, polling and stopping, the order of the
handlers, result buttons and showing outcomes; the command handlers are mixed in from
commands.py, the editing loop (/inpaint, 🖌 Region, remix questions) from editing.py.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from telegram import BotCommand, CallbackQuery, Message, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import redaction
from bot.adapters.telegram.commands import CommandHandlers
from bot.adapters.telegram.editing import EditingHandlers
from bot.adapters.telegram.media import fit
from bot.adapters.telegram.polling import ConfirmingPoller
from bot.adapters.telegram.retry import RetryingLimiter
from bot.adapters.telegram.sender import PREVIEW_INTERVAL_S, UPLOAD_TIMEOUT_S, TelegramSender
from bot.adapters.telegram.surface import ChatSurface
from bot.commands import buttons
from bot.commands.base import Caller, Context, Outcome, Reply
from bot.config import ConfigError
from bot.delivery.outcomes import present

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("atelier.telegram")

PLATFORM = "telegram"
CallbackContext = ContextTypes.DEFAULT_TYPE

# Shown in Telegram's command menu (setMyCommands, default scope).
COMMAND_MENU = [
    ("imagine", "Paint a picture: /imagine a red fox --ar 3:2"),
    ("vary", "Vary a picture: send a photo with the caption /vary"),
    ("inpaint", "Repaint part: reply to a photo with a mask, caption /inpaint"),
    ("avatar", "Build an avatar step by step"),
    ("plot", "Compare settings in a grid: /plot a fox --x steps=10,20"),
    ("queue", "Where your pictures are in the queue"),
    ("cancel", "Cancel your latest queued picture"),
    ("model", "List models (admins: /model NAME switches)"),
    ("loras", "List LoRAs, used as <lora:NAME:0.8> in a prompt"),
    ("settings", "Your defaults: aspect, steps, sampler, DMs"),
    ("whoami", "Your Telegram user id, as [admins] wants it"),
    ("help", "How to use Atelier"),
]
SOMETHING_WENT_WRONG = "⚠️ Something went wrong there. Please try again."
# Seconds between attempts to reach Telegram at start: doubling up to the cap.
CONNECT_BACKOFF_S = (1.0, 60.0)
# Handler group of the unknown-command answer: after every command handler.
UNKNOWN_GROUP = 1


class TelegramAdapter(CommandHandlers, EditingHandlers):
    def __init__(
        self,
        services: Services,
        *,
        poll_timeout: int = 10,  # seconds; the Bot API takes whole seconds
        status_interval: float = 3.0,
        action_interval: float = 4.5,
        connect_backoff: tuple[float, float] = CONNECT_BACKOFF_S,
        upload_timeout: float = UPLOAD_TIMEOUT_S,
        preview_interval: float = PREVIEW_INTERVAL_S,
    ) -> None:
        self.services = services
        self.poll_timeout = poll_timeout
        telegram = services.config.telegram
        _hide_in_logs(telegram.token)
        self.app: Application = (
            ApplicationBuilder()
            .token(telegram.token)
            .base_url(telegram.base_url)
            .base_file_url(telegram.base_file_url)
            .rate_limiter(RetryingLimiter())
            # Polled by `ConfirmingPoller`: an update is confirmed once handled.
            .updater(None)
            .build()
        )
        self.poller = ConfirmingPoller(self.app.bot, self.app.process_update, timeout=poll_timeout)
        self.status_interval = status_interval
        self.connect_backoff = connect_backoff
        self.sender = TelegramSender(
            self.app.bot,
            services.scheduler.update_origin,
            action_interval=action_interval,
            upload_timeout=upload_timeout,
            preview_interval=preview_interval,
        )
        self._add_handlers()

    async def start(self) -> None:
        """Connect and start polling; returns once Telegram answered. Runs in this loop.

        Without a network it keeps trying (a box may boot before its network is up);
        a rejected token is one ConfigError line, without the token.
        """
        try:
            await self._connect()
            await self.app.start()
            self.poller.start()
        except BaseException:
            await self.stop()
            raise
        # Last: events held for jobs resumed after a restart start flowing now.
        self.services.courier.register(PLATFORM, self.sender, status_interval=self.status_interval)
        log.info("Telegram adapter started as @%s", self.app.bot.username)

    async def _connect(self) -> None:
        delay, cap = self.connect_backoff
        while True:
            try:
                await self.app.initialize()  # getMe: the username makes /imagine@Bot work
                await self.app.bot.set_my_commands(
                    [BotCommand(name, text) for name, text in COMMAND_MENU]
                )
                return
            except InvalidToken as exc:
                raise ConfigError(f"Telegram rejected the token ({_status_of(exc)})") from None
            except NetworkError as exc:
                log.warning("Telegram is unreachable (%s); trying again in %g s", exc, delay)
                # python-telegram-bot before 22.3 counts the bot as initialized even when
                # its getMe failed; undo that, so the next try asks again.
                await self.app.bot.shutdown()
            await asyncio.sleep(delay)
            delay = min(cap, delay * 2)

    async def stop_listening(self) -> None:
        """No new commands from now on; those not handled yet wait on Telegram's side
        for the next start. Deliveries still go out."""
        await self.poller.stop()

    async def stop(self) -> None:
        await self.stop_listening()
        if self.app.running:
            await self.app.stop()
        self.sender.close()
        await self.app.shutdown()

    def _add_handlers(self) -> None:
        # In this order: within a group, the first handler that matches an update runs.
        self.add_command_handlers()
        self.add_editing_handlers()
        app = self.app
        app.add_handler(CallbackQueryHandler(self._on_button))
        # Its own group, so it sees every command, whoever registered which above.
        new = filters.UpdateType.MESSAGE
        app.add_handler(
            MessageHandler(new & filters.COMMAND, self._on_unknown_command), group=UNKNOWN_GROUP
        )
        app.add_error_handler(self._on_error)

    # ---- buttons ----------------------------------------------------------------------

    async def _on_button(self, update: Update, context: CallbackContext) -> None:
        query, ctx = self._query_context(update)
        data = query.data or ""
        if await self.asked_for_prompt(query, ctx, data):
            return
        await self._answer_press(query, update, ctx, await buttons.run(ctx, data))

    async def _answer_press(
        self, query: CallbackQuery, update: Update, ctx: Context, outcome: Outcome
    ) -> None:
        if isinstance(outcome, Reply) and outcome.error:
            # A refusal about a button fits the little pop-up Telegram shows for it.
            await query.answer(fit(outcome.text, 200), show_alert=True)
            return
        await query.answer()
        await self._answer(outcome, update, ctx.origin["reply_to"])

    # ---- outcomes ---------------------------------------------------------------------

    async def _answer(self, outcome: Outcome, update: Update, reply_to: int | None) -> None:
        """Show a command's outcome in the chat of `update`, as a reply to `reply_to`."""
        chat = update.effective_chat
        user = update.effective_user
        assert chat is not None and user is not None
        surface = ChatSurface(
            self.app.bot,
            self.services.store,
            chat.id,
            reply_to,
            user.id,
            private_chat=chat.type == chat.PRIVATE,
        )
        await present(outcome, surface, self.services.courier)

    async def _drop_keyboard(self, chat_id: int, message_id: int) -> None:
        try:
            await self.app.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        except BadRequest as exc:
            log.info("old keyboard not removed: %s", exc.message)

    # ---- plumbing ---------------------------------------------------------------------

    def _caller(self, update: Update) -> Caller:
        user = update.effective_user
        assert user is not None
        return self.services.caller(PLATFORM, user.id, user.full_name)

    def _message_context(self, update: Update) -> tuple[Message, Context]:
        message = update.effective_message
        assert message is not None
        origin = {"chat_id": message.chat_id, "reply_to": message.message_id}
        return message, Context(self.services, self._caller(update), origin)

    def _query_context(self, update: Update) -> tuple[CallbackQuery, Context]:
        """A click: replies go to the chat of the clicked message, as replies to it."""
        query = update.callback_query
        assert query is not None and query.message is not None
        # An old message may be "inaccessible", but its chat and id are still known.
        origin = {"chat_id": query.message.chat.id, "reply_to": query.message.message_id}
        return query, Context(self.services, self._caller(update), origin)

    async def _on_error(self, update: object, context: CallbackContext) -> None:
        """Log it, tell the user briefly, keep serving everyone else."""
        log.error("Telegram update failed", exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(SOMETHING_WENT_WRONG, show_alert=True)
            else:
                await self.app.bot.send_message(update.effective_chat.id, SOMETHING_WENT_WRONG)
        except TelegramError as exc:
            log.warning("could not report the error to the chat: %s", exc)


def _status_of(exc: InvalidToken) -> str:
    """401 or 404, from the answer behind python-telegram-bot's message (which quotes
    the token, so it is never shown)."""
    answer = str(exc.__cause__ or "")
    return "404" if "not found" in answer.lower() else "401"


_REDACTING = redaction.RedactingFilter()


def _hide_in_logs(token: str) -> None:
    """Telegram's API URLs contain the token: python-telegram-bot logs them at DEBUG
    when the bot is built, httpx every request at INFO. Filtered on these loggers
    themselves, so whichever handler their records reach gets them clean."""
    redaction.register(token)
    for name in ("telegram.Bot", "telegram.ext.ExtBot", "httpx"):
        logger = logging.getLogger(name)
        if _REDACTING not in logger.filters:
            logger.addFilter(_REDACTING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
