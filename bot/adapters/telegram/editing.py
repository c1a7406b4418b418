"""The editing loop on Telegram: /inpaint (the mask as a reply to the photo), the
🖌 Region grid (edited in place), and remix questions (a ForceReply message, with a
"keep the prompt" button), as handlers mixed into `TelegramAdapter`.

What a question waits for is in the store (`remix.remember`), keyed by the question's
message, so a reply after a restart still paints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import CallbackQuery, ForceReply, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.adapters.telegram.media import (
    addressed_to,
    command_text,
    fit,
    keyboard,
    over_download_limit,
    picture_of,
    replying_to,
)
from bot.commands import inpaint, region, remix
from bot.commands.base import Button, Context, Outcome, Reply

if TYPE_CHECKING:
    from bot.adapters.telegram.adapter import TelegramAdapter

CallbackContext = ContextTypes.DEFAULT_TYPE
_INPAINT_CAPTION = filters.CaptionRegex(r"^/inpaint(@\w+)?(\s|$)")
KEEP_TEXT = "…or paint it with the prompt as it is:"
PLACEHOLDER = "The new prompt"
TOO_BIG = "That file is over 20 MB, more than Telegram lets bots download."


def _question_key(chat_id: int, message_id: int) -> str:
    return f"telegram:{chat_id}:{message_id}"


class EditingHandlers:
    def add_editing_handlers(self: TelegramAdapter) -> None:
        new = filters.UpdateType.MESSAGE
        app = self.app
        app.add_handler(CommandHandler("inpaint", self._on_inpaint, filters=new))
        pictures = filters.PHOTO | filters.Document.ALL
        app.add_handler(MessageHandler(new & _INPAINT_CAPTION & pictures, self._on_inpaint))
        app.add_handler(CallbackQueryHandler(self._on_region_click, pattern=f"^{region.PATTERN}$"))
        app.add_handler(CallbackQueryHandler(self._on_keep, pattern=f"^{remix.KEEP_PATTERN}$"))
        # A text reply to one of the bot's questions: the remix's new prompt.
        replies = new & filters.REPLY & filters.TEXT & ~filters.COMMAND
        app.add_handler(MessageHandler(replies, self._on_prompt_reply))

    async def _on_inpaint(self: TelegramAdapter, update: Update, context: CallbackContext) -> None:
        """The mask is the message's own picture; the picture is the one it replies to."""
        message, ctx = self._message_context(update)
        if not addressed_to(message, self.app.bot.username):
            return
        bot = self.app.bot
        mask = picture_of(message, bot)
        image = picture_of(message.reply_to_message, bot)
        if image is None and mask is not None:
            image, mask = mask, None  # a picture with no photo to reply to: no mask yet
        if any(p is not None and over_download_limit(p) for p in (image, mask)):
            outcome: Outcome = Reply(TOO_BIG, error=True)
        else:
            outcome = await inpaint.run(ctx, image, mask, command_text(message))
        await self._answer(outcome, update, message.message_id)

    async def _on_region_click(
        self: TelegramAdapter, update: Update, context: CallbackContext
    ) -> None:
        """A 🖌 Region grid press: toggles edit the grid in place; Repaint answers with
        a new picture, like a result button."""
        query, ctx = self._query_context(update)
        data = query.data or ""
        if not region.edits_in_place(data):
            if await self.asked_for_prompt(query, ctx, data):
                return
            await self._answer_press(query, update, ctx, await region.click(ctx, data))
            return
        outcome = await region.click(ctx, data)
        if not isinstance(outcome, Reply) or outcome.error:
            await self._answer_press(query, update, ctx, outcome)
            return
        await query.answer()
        try:
            await self.app.bot.edit_message_text(
                fit(outcome.text),
                chat_id=ctx.origin["chat_id"],
                message_id=ctx.origin["reply_to"],
                reply_markup=keyboard(outcome.buttons),
            )
        except BadRequest as exc:
            if "not modified" not in exc.message:  # the same press twice
                raise

    async def asked_for_prompt(
        self: TelegramAdapter, query: CallbackQuery, ctx: Context, data: str
    ) -> bool:
        """A remix: ask for the new prompt (ForceReply) and offer to keep it instead;
        the press waits in the store for the reply."""
        ask = await remix.ask(ctx, data)
        if ask is None:
            return False
        await query.answer()
        chat_id, reply_to = ctx.origin["chat_id"], ctx.origin["reply_to"]
        bot = self.app.bot
        question = await bot.send_message(
            chat_id,
            fit(ask.question),
            reply_markup=ForceReply(input_field_placeholder=PLACEHOLDER),
            reply_parameters=replying_to(reply_to),
        )
        where = _question_key(chat_id, question.message_id)
        await remix.remember(self.services.store, where, ask.data, ctx.caller.key)
        await bot.send_message(
            chat_id,
            KEEP_TEXT,
            reply_markup=keyboard([[Button(remix.KEEP_LABEL, ask.keep)]]),
            reply_parameters=replying_to(question.message_id),
        )
        return True

    async def _on_keep(self: TelegramAdapter, update: Update, context: CallbackContext) -> None:
        """ "Keep the prompt": the press runs as it is; the button goes."""
        query, ctx = self._query_context(update)
        outcome = await remix.run(ctx, query.data or "")
        await self._answer_press(query, update, ctx, outcome)
        if not (isinstance(outcome, Reply) and outcome.error):
            await self._drop_keyboard(ctx.origin["chat_id"], ctx.origin["reply_to"])

    async def _on_prompt_reply(
        self: TelegramAdapter, update: Update, context: CallbackContext
    ) -> None:
        """A reply to a remix question (from the one asked) paints with its text."""
        message, ctx = self._message_context(update)
        replied = message.reply_to_message
        if replied is None or replied.from_user is None or replied.from_user.id != self.app.bot.id:
            return
        where = _question_key(message.chat_id, replied.message_id)
        data = await remix.take(self.services.store, where, ctx.caller.key)
        if data is None or not message.text:
            return
        outcome = await remix.run(ctx, data, message.text.strip())
        await self._answer(outcome, update, message.message_id)
