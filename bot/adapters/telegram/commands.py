"""The commands on Telegram: the text commands (/imagine, /queue, /model, ...), /vary
and /plot with their pictures, the /avatar wizard, /settings and /whoami, and the
answer to an unknown command, as handlers mixed into `TelegramAdapter`.

Each only turns the message into a call to `bot.commands`; the adapter shows the outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.adapters.telegram import panel, wizard
from bot.adapters.telegram.editing import TOO_BIG as TOO_BIG_FOR_TELEGRAM
from bot.adapters.telegram.media import (
    addressed_to,
    command_text,
    fit,
    keyboard,
    over_download_limit,
    picture_of,
    replying_to,
)
from bot.commands import (
    admin,
    avatar,
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
from bot.commands.base import Context, ImageInput, Outcome, Reply

if TYPE_CHECKING:
    from bot.adapters.telegram.adapter import TelegramAdapter

CallbackContext = ContextTypes.DEFAULT_TYPE
TextCommand = Callable[[Context, str], Awaitable[Outcome]]

_VARY_CAPTION = filters.CaptionRegex(r"^/vary(@\w+)?(\s|$)")
_PLOT_CAPTION = filters.CaptionRegex(r"^/plot(@\w+)?(\s|$)")


class CommandHandlers:
    def add_command_handlers(self: TelegramAdapter) -> None:
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

    def _add_personal_handlers(self: TelegramAdapter) -> None:
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

    def _text_command(
        self: TelegramAdapter, run: TextCommand
    ) -> Callable[[Update, CallbackContext], Awaitable[None]]:
        """A handler for a command that only needs the text after `/name`."""

        async def handle(update: Update, context: CallbackContext) -> None:
            message, ctx = self._message_context(update)
            outcome = await run(ctx, command_text(message))
            await self._answer(outcome, update, message.message_id)

        return handle

    async def _on_vary(self: TelegramAdapter, update: Update, context: CallbackContext) -> None:
        await self._with_picture(update, lambda ctx, image, text: vary.run(ctx, image, text))

    async def _on_plot(self: TelegramAdapter, update: Update, context: CallbackContext) -> None:
        """/plot, with an optional picture (attached or replied to) for img2img cells."""
        await self._with_picture(update, lambda ctx, image, text: plot.run(ctx, text, image=image))

    async def _with_picture(
        self: TelegramAdapter,
        update: Update,
        run: Callable[[Context, ImageInput | None, str], Awaitable[Outcome]],
    ) -> None:
        """A command that takes the picture attached to it or to the message it answers."""
        message, ctx = self._message_context(update)
        if not addressed_to(message, self.app.bot.username):
            return
        bot = self.app.bot
        image = picture_of(message, bot) or picture_of(message.reply_to_message, bot)
        if image is not None and over_download_limit(image):
            outcome: Outcome = Reply(TOO_BIG_FOR_TELEGRAM, error=True)
        else:
            outcome = await run(ctx, image, command_text(message))
        await self._answer(outcome, update, message.message_id)

    async def _on_avatar(self: TelegramAdapter, update: Update, context: CallbackContext) -> None:
        message, _ = self._message_context(update)
        assert update.effective_user is not None
        steps = self.services.presets.steps
        await self.app.bot.send_message(
            message.chat_id,
            wizard.step_text(steps, ()),
            reply_markup=keyboard(wizard.step_buttons(steps, (), update.effective_user.id)),
            reply_parameters=replying_to(message.message_id),
        )

    async def _on_wizard_click(
        self: TelegramAdapter, update: Update, context: CallbackContext
    ) -> None:
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

    async def _on_panel_click(
        self: TelegramAdapter, update: Update, context: CallbackContext
    ) -> None:
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

    async def _on_unknown_command(
        self: TelegramAdapter, update: Update, context: CallbackContext
    ) -> None:
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

    def _command_names(self: TelegramAdapter) -> set[str]:
        return {
            name
            for handler in self.app.handlers.get(0, [])
            if isinstance(handler, CommandHandler)
            for name in handler.commands
        }


def _first_word(text: str) -> str | None:
    return text.split(maxsplit=1)[0] if text else None


async def _ban(ctx: Context, text: str) -> Outcome:
    """`/ban USER [reason...]`."""
    user, _, reason = text.partition(" ")
    return await admin.ban(ctx, user, reason)
