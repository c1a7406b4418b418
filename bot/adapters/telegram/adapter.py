"""Telegram adapter: python-telegram-bot events in, neutral commands out, outcomes back.

It runs inside Atelier's own event loop (no `run_polling`), so Telegram and Discord can
share one process. Parsing, validation, queueing and wording live in `bot.commands`;
this module only translates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import BotCommand, CallbackQuery, Message, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import redaction
from bot.adapters.telegram import panel, wizard
from bot.adapters.telegram.editing import TOO_BIG as TOO_BIG_FOR_TELEGRAM
from bot.adapters.telegram.editing import EditingHandlers
from bot.adapters.telegram.media import (
    addressed_to,
    command_text,
    fit,
    keyboard,
    over_download_limit,
    picture_of,
    replying_to,
)
from bot.adapters.telegram.polling import ConfirmingPoller
from bot.adapters.telegram.retry import RetryingLimiter
from bot.adapters.telegram.sender import PREVIEW_INTERVAL_S, UPLOAD_TIMEOUT_S, TelegramSender
from bot.adapters.telegram.surface import ChatSurface
from bot.commands import (
    admin,
    avatar,
    buttons,
    cancel,
    imagine,
    loras,
    model,
    plot,
    queue,
    settings,
    unknown,
    vary,
    whoami,
)
from bot.commands import help as help_command
from bot.commands.base import Caller, Context, Outcome, Reply
from bot.config import ConfigError
from bot.delivery.outcomes import present

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("atelier.telegram")

PLATFORM = "telegram"
CallbackContext = ContextTypes.DEFAULT_TYPE
TextCommand = Callable[[Context, str], Awaitable[Outcome]]

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
_VARY_CAPTION = filters.CaptionRegex(r"^/vary(@\w+)?(\s|$)")
_PLOT_CAPTION = filters.CaptionRegex(r"^/plot(@\w+)?(\s|$)")
# Handler group of the unknown-command answer: after every command handler.
UNKNOWN_GROUP = 1


class TelegramAdapter(EditingHandlers):
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
        text_commands: dict[str, TextCommand] = {
            "start": lambda ctx, text: help_command.run(ctx),
            "help": lambda ctx, text: help_command.run(ctx),
            "imagine": imagine.run,
            "queue": lambda ctx, text: queue.run(ctx),
            "cancel": lambda ctx, text: cancel.run(ctx, _first_word(text)),
            "model": lambda ctx, text: model.run(ctx, text or None),
            "loras": lambda ctx, text: loras.run(ctx),
            "ban": _ban,
            "unban": admin.unban,
        }
        # New messages only: editing an old /imagine must not paint it again.
        new = filters.UpdateType.MESSAGE
        app = self.app
        for name, run in text_commands.items():
            app.add_handler(CommandHandler(name, self._text_command(run), filters=new))
        app.add_handler(CommandHandler("vary", self._on_vary, filters=new))
        app.add_handler(
            MessageHandler(
                new & _VARY_CAPTION & (filters.PHOTO | filters.Document.ALL), self._on_vary
            )
        )
        app.add_handler(CommandHandler("avatar", self._on_avatar, filters=new))
        app.add_handler(CommandHandler("plot", self._on_plot, filters=new))
        app.add_handler(
            MessageHandler(
                new & _PLOT_CAPTION & (filters.PHOTO | filters.Document.ALL), self._on_plot
            )
        )
        app.add_handler(CallbackQueryHandler(self._on_wizard_click, pattern=wizard.PATTERN))
        self._add_personal_handlers()
        self.add_editing_handlers()
        app.add_handler(CallbackQueryHandler(self._on_button))
        # Its own group, so it sees every command, whoever registered which above.
        app.add_handler(
            MessageHandler(new & filters.COMMAND, self._on_unknown_command), group=UNKNOWN_GROUP
        )
        app.add_error_handler(self._on_error)

    def _add_personal_handlers(self) -> None:
        """/settings (a panel edited in place) and /whoami."""
        new = filters.UpdateType.MESSAGE
        self.app.add_handler(
            CommandHandler("settings", self._text_command(settings.run), filters=new)
        )
        self.app.add_handler(
            CommandHandler(
                "whoami", self._text_command(lambda ctx, _: whoami.run(ctx)), filters=new
            )
        )
        self.app.add_handler(
            CallbackQueryHandler(self._on_panel_click, pattern=f"^{settings.PATTERN}$")
        )

    # ---- commands ---------------------------------------------------------------------

    def _text_command(
        self, run: TextCommand
    ) -> Callable[[Update, CallbackContext], Awaitable[None]]:
        """A handler for a command that only needs the text after `/name`."""

        async def handle(update: Update, context: CallbackContext) -> None:
            message, ctx = self._message_context(update)
            outcome = await run(ctx, command_text(message))
            await self._answer(outcome, update, message.message_id)

        return handle

    async def _on_vary(self, update: Update, context: CallbackContext) -> None:
        message, ctx = self._message_context(update)
        if not addressed_to(message, self.app.bot.username):
            return
        bot = self.app.bot
        image = picture_of(message, bot) or picture_of(message.reply_to_message, bot)
        if image is not None and over_download_limit(image):
            outcome: Outcome = Reply(TOO_BIG_FOR_TELEGRAM, error=True)
        else:
            outcome = await vary.run(ctx, image, command_text(message))
        await self._answer(outcome, update, message.message_id)

    async def _on_plot(self, update: Update, context: CallbackContext) -> None:
        """/plot, with an optional picture (attached or replied to) for img2img cells."""
        message, ctx = self._message_context(update)
        if not addressed_to(message, self.app.bot.username):
            return
        bot = self.app.bot
        image = picture_of(message, bot) or picture_of(message.reply_to_message, bot)
        if image is not None and over_download_limit(image):
            outcome: Outcome = Reply(TOO_BIG_FOR_TELEGRAM, error=True)
        else:
            outcome = await plot.run(ctx, command_text(message), image=image)
        await self._answer(outcome, update, message.message_id)

    async def _on_avatar(self, update: Update, context: CallbackContext) -> None:
        message, _ = self._message_context(update)
        assert update.effective_user is not None
        steps = self.services.presets.steps
        await self.app.bot.send_message(
            message.chat_id,
            wizard.step_text(steps, ()),
            reply_markup=keyboard(wizard.step_buttons(steps, (), update.effective_user.id)),
            reply_parameters=replying_to(message.message_id),
        )

    # ---- buttons ----------------------------------------------------------------------

    async def _on_wizard_click(self, update: Update, context: CallbackContext) -> None:
        query, ctx = self._query_context(update)
        chat_id, message_id = ctx.origin["chat_id"], ctx.origin["reply_to"]
        click = wizard.decode(query.data or "")
        steps = self.services.presets.steps
        if click is None or not wizard.valid_path(steps, click.path):
            await query.answer("This wizard is out of date: send /avatar again.", show_alert=True)
            await self._drop_keyboard(chat_id, message_id)
            return
        if click.owner_id != query.from_user.id:
            await query.answer("Only the person who started this wizard can use it.")
            return
        await query.answer()
        edit = self.app.bot.edit_message_text
        if click.action == wizard.CANCEL:
            await edit("✖️ Avatar cancelled.", chat_id=chat_id, message_id=message_id)
        elif len(click.path) < len(steps):
            await edit(
                wizard.step_text(steps, click.path),
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=keyboard(wizard.step_buttons(steps, click.path, click.owner_id)),
            )
        else:
            summary = wizard.summary_text(steps, click.path)
            await edit(summary, chat_id=chat_id, message_id=message_id)
            outcome = await avatar.run(ctx, wizard.choices_of(steps, click.path))
            await self._answer(outcome, update, message_id)

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

    async def _on_panel_click(self, update: Update, context: CallbackContext) -> None:
        """A /settings panel press: the panel message is edited in place."""
        query, ctx = self._query_context(update)
        reply = await settings.click(ctx, query.data or "")
        if reply.error:
            await query.answer(fit(reply.text, 200), show_alert=True)
            return
        await query.answer()
        try:
            await self.app.bot.edit_message_text(
                fit(reply.text),
                chat_id=ctx.origin["chat_id"],
                message_id=ctx.origin["reply_to"],
                reply_markup=panel.markup(reply),
            )
        except BadRequest as exc:
            if "not modified" not in exc.message:  # pressed what was already chosen
                raise

    async def _on_unknown_command(self, update: Update, context: CallbackContext) -> None:
        """`/imagin` and the like: one line pointing to /help. In a group only when the
        command names this bot (`/imagin@ThisBot`): other bots' commands are theirs."""
        message = update.effective_message
        if message is None or not message.text:
            return
        command = message.text.split(maxsplit=1)[0][1:]
        name, _, target = command.partition("@")
        known = self._command_names()
        if name.lower() in known:
            return  # one of ours, answered by its handler
        username = self.app.bot.username or ""
        private = message.chat.type == message.chat.PRIVATE
        if target.lower() != username.lower() and (target or not private):
            return
        message, ctx = self._message_context(update)
        await self._answer(await unknown.run(ctx, name, known), update, message.message_id)

    def _command_names(self) -> set[str]:
        return {
            name
            for handler in self.app.handlers.get(0, [])
            if isinstance(handler, CommandHandler)
            for name in handler.commands
        }

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


def _first_word(text: str) -> str | None:
    return text.split(maxsplit=1)[0] if text else None


async def _ban(ctx: Context, text: str) -> Outcome:
    """`/ban USER [reason...]`."""
    user, _, reason = text.partition(" ")
    return await admin.ban(ctx, user, reason)


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
