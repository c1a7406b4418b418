"""Discord's side of delivery, from the origin stored with each job.

Status lines and results edit the interaction's deferred response (a PATCH: the same
edit twice shows once, so `resend_is_safe`); the result replaces the status with the
pictures and their buttons. Once the interaction token has expired (15 minutes) the
result goes to the channel instead, mentioning the user, with a message nonce that
Discord enforces, so a repeated send is still one message. discord.py itself waits
out 429s and retries 5xx answers; what still fails is mapped to what it proves
(`bot/delivery/sender.py`) and the courier's outbox retries it.
"""

from __future__ import annotations

import asyncio
import io
import logging

import aiohttp
import discord

from bot.adapters.discord.images import ResultFile, ResultPicture, result_files
from bot.adapters.discord.origin import DiscordOrigin
from bot.adapters.discord.views import result_view
from bot.commands.base import Button
from bot.commands.generation import DM_RESULTS
from bot.delivery.sender import NotSent, ResultLetter, Undeliverable
from bot.records import Job

log = logging.getLogger("atelier.discord")

_NO_MENTIONS = discord.AllowedMentions.none()
SENT_TO_DMS = "📬 Sent to your DMs (your /settings)."
# A request that may have reached Discord: repeating it is safe here (edits, nonces).
_TRANSIENT = (discord.DiscordServerError, discord.RateLimited, aiohttp.ClientError, TimeoutError)


# Live previews: at most one picture a second per channel (Discord's message routes
# allow about 5 per 5 s per channel; discord.py waits out the rest).
PREVIEW_INTERVAL_S = 1.0
PREVIEW_FILENAME = "preview.jpg"


class DiscordSender:
    resend_is_safe = True

    def __init__(
        self, client: discord.Client, *, preview_interval: float = PREVIEW_INTERVAL_S
    ) -> None:
        self._client = client
        self.preview_interval = preview_interval

    async def show_status(self, job: Job, text: str) -> None:
        """Progress is transient: a status that cannot be shown is skipped."""
        origin = self._origin(job)
        if not origin.token_alive or origin.response_id is None:
            return
        try:
            await self._webhook(origin).edit_message(origin.response_id, content=text)
        except discord.HTTPException as exc:
            log.info("Discord: status not shown (%s)", exc)

    async def show_preview(self, job: Job, text: str, picture: bytes) -> None:
        """The deferred response with the preview as its one attachment; the result's
        edit replaces it (its `attachments` are the result's files only)."""
        origin = self._origin(job)
        if not origin.token_alive or origin.response_id is None:
            return
        try:
            await self._webhook(origin).edit_message(
                origin.response_id,
                content=text,
                attachments=[discord.File(io.BytesIO(picture), filename=PREVIEW_FILENAME)],
            )
        except discord.HTTPException as exc:
            log.info("Discord: preview not shown (%s)", exc)

    def status_chat(self, job: Job) -> str:
        return str(self._origin(job).channel_id)

    async def send_result(self, letter: ResultLetter) -> None:
        origin = self._origin(letter.job)
        # In a channel not marked NSFW, flagged pictures are hidden behind a spoiler.
        spoil = not origin.nsfw_channel
        pictures = [
            ResultPicture(png, image.seed, spoiler=spoil and image.flagged)
            for png, image in zip(letter.pictures, letter.job.images, strict=True)
        ]
        files = await asyncio.to_thread(result_files, pictures, limit=origin.upload_limit)
        # In a guild only: a command sent in DMs is answered there anyway.
        wants_dm = letter.job.origin.get(DM_RESULTS) and origin.guild_id is not None
        if wants_dm and await self._send_to_dm(
            letter.job, origin, letter.caption, files, letter.buttons
        ):
            return
        await self._send(letter.job, origin, letter.caption, files, letter.buttons)

    async def send_notice(self, job: Job, text: str, buttons: list[list[Button]]) -> None:
        await self._send(job, self._origin(job), text, [], buttons)

    # ---- sending ------------------------------------------------------------------------

    async def _send(
        self,
        job: Job,
        origin: DiscordOrigin,
        content: str,
        files: list[ResultFile],
        buttons: list[list[Button]],
    ) -> None:
        try:
            await self._send_once(job, origin, content, files, buttons)
        except discord.RateLimited as exc:
            raise NotSent("rate limited", retry_after=exc.retry_after) from exc
        except _TRANSIENT as exc:
            raise NotSent(str(exc) or type(exc).__name__) from exc
        except discord.HTTPException as exc:
            raise Undeliverable(str(exc)) from exc

    async def _send_once(
        self,
        job: Job,
        origin: DiscordOrigin,
        content: str,
        files: list[ResultFile],
        buttons: list[list[Button]],
    ) -> None:
        """In place of the deferred response; in the channel once the token expired."""
        view = result_view(buttons) if buttons else None
        extra = {} if view is None else {"view": view}
        if origin.token_alive and origin.response_id is not None:
            try:
                await self._webhook(origin).edit_message(
                    origin.response_id,
                    content=content,
                    attachments=_files(files),
                    allowed_mentions=_NO_MENTIONS,
                    **extra,
                )
                return
            except (discord.NotFound, discord.Forbidden) as exc:
                log.info("Discord: response gone (%s); posting in the channel", exc)
            except discord.HTTPException as exc:
                if exc.status != 401:  # 401: the token expired early
                    raise
        channel = self._client.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)
        await channel.send(
            f"<@{origin.user_id}> {content}",
            files=_files(files),
            allowed_mentions=discord.AllowedMentions(
                users=[discord.Object(origin.user_id)], everyone=False, roles=False
            ),
            # Discord drops a second message with the same nonce: a retry is not a copy.
            nonce=f"atelier-{job.id}",
            **extra,
        )

    async def _send_to_dm(
        self,
        job: Job,
        origin: DiscordOrigin,
        content: str,
        files: list[ResultFile],
        buttons: list[list[Button]],
    ) -> bool:
        """The result in the owner's DMs (their /settings), the response pointing there.
        False when the user takes no DMs from the server's members: nothing was sent."""
        view = result_view(buttons) if buttons else None
        try:
            channel = await self._client.create_dm(discord.Object(origin.user_id))
            await channel.send(
                content,
                files=_files(files),
                allowed_mentions=_NO_MENTIONS,
                # As in channels: a repeated send (a retry, a restart) is one message.
                nonce=f"atelier-{job.id}",
                **({} if view is None else {"view": view}),
            )
        except discord.Forbidden as exc:
            log.info("Discord: job %s: DMs closed (%s); answering in the channel", job.id, exc)
            return False
        except discord.RateLimited as exc:
            raise NotSent("rate limited", retry_after=exc.retry_after) from exc
        except _TRANSIENT as exc:
            raise NotSent(str(exc) or type(exc).__name__) from exc
        except discord.HTTPException as exc:
            raise Undeliverable(str(exc)) from exc
        if origin.token_alive and origin.response_id is not None:
            try:
                await self._webhook(origin).edit_message(
                    origin.response_id, content=SENT_TO_DMS, attachments=[], view=None
                )
            except discord.HTTPException as exc:  # the result is out; this is cosmetic
                log.info("Discord: the response of job %s not edited: %s", job.id, exc)
        return True

    @staticmethod
    def _origin(job: Job) -> DiscordOrigin:
        origin = DiscordOrigin.from_job_origin(job.origin)
        if origin is None:
            raise Undeliverable(f"job {job.id} has no Discord origin")
        return origin

    def _webhook(self, origin: DiscordOrigin) -> discord.Webhook:
        return discord.Webhook.partial(origin.application_id, origin.token, client=self._client)


def _files(files: list[ResultFile]) -> list[discord.File]:
    # Fresh objects per try: discord.py closes a File once it has been sent.
    return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in files]
