"""Progress and results of Discord jobs, from the origin stored with each job.

Status lines edit the deferred response (at most one edit per `interval`, the
newest status shown once the interval is over); the result replaces it with the
pictures and their buttons. Once the interaction token has expired (15 minutes) the
result goes to the channel instead, mentioning the user. discord.py already retries
429s and 5xx answers; a result that still fails is tried again here, so it is not lost
to a bad minute on Discord's side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import logging
from collections import OrderedDict
from pathlib import Path

import aiohttp
import discord

from bot.adapters.discord.images import ResultFile, ResultPicture, result_files
from bot.adapters.discord.origin import DiscordOrigin
from bot.adapters.discord.views import result_view
from bot.commands import render
from bot.commands.delivery import StatusLine
from bot.jobs.models import Cancelled, Failed, Finished, Job, JobEvent

log = logging.getLogger("atelier.discord")

STATUS_INTERVAL_S = 2.0
RETRY_DELAYS_S = (2.0, 5.0, 15.0)
# Jobs whose state is kept, so a late status never overwrites a delivered result.
_REMEMBERED_JOBS = 2000
_NO_MENTIONS = discord.AllowedMentions.none()
_TRANSIENT = (discord.DiscordServerError, aiohttp.ClientError, TimeoutError)


class Delivery:
    def __init__(
        self, client: discord.Client, data_dir: Path, *, interval: float = STATUS_INTERVAL_S
    ) -> None:
        self._client = client
        self._data_dir = data_dir
        self._interval = interval
        self._jobs: OrderedDict[str, StatusLine] = OrderedDict()

    async def on_job_event(self, job: Job, event: JobEvent) -> None:
        """The scheduler's listener for every Discord job."""
        origin = DiscordOrigin.from_job_origin(job.origin)
        if origin is None:
            log.warning("Discord: job %s has no Discord origin; nothing shown", job.id)
            return
        if self._client.is_closed():
            # Stopping: the job stays in the store; nothing can be sent any more.
            return
        status = self._status(job.id)
        async with status.lock:
            if status.done:
                return
            if isinstance(event, Finished):
                status.finish()
                await self._deliver_result(dataclasses.replace(job, images=event.images), origin)
            elif isinstance(event, Failed | Cancelled):
                status.finish()
                await self._final_status(origin, render.status_text(event))
            else:
                await status.show(
                    render.status_text(event), functools.partial(self._edit_status, origin)
                )

    async def show_status(self, job: Job, origin: DiscordOrigin, text: str) -> None:
        """The first status of a new job, unless its events already said more."""
        status = self._status(job.id)
        async with status.lock:
            if status.done or status.started:
                return
            await status.show(text, functools.partial(self._edit_status, origin))

    def _status(self, job_id: str) -> StatusLine:
        status = self._jobs.get(job_id)
        if status is None:
            status = self._jobs[job_id] = StatusLine(self._interval)
            while len(self._jobs) > _REMEMBERED_JOBS:
                self._jobs.popitem(last=False)
        return status

    # ---- status ----------------------------------------------------------------------

    async def _edit_status(self, origin: DiscordOrigin, text: str) -> None:
        """Progress is transient: a status that cannot be shown is skipped."""
        if not origin.token_alive or origin.response_id is None:
            return
        try:
            await self._webhook(origin).edit_message(origin.response_id, content=text)
        except discord.HTTPException as exc:
            log.info("Discord: status not shown (%s)", exc)

    async def _final_status(self, origin: DiscordOrigin, text: str) -> None:
        """A failure or cancellation must reach the user, like a result."""
        await self._send_reliably(origin, text, [], None, new_message=False)

    # ---- results ------------------------------------------------------------------

    async def _deliver_result(self, job: Job, origin: DiscordOrigin) -> None:
        # In a channel not marked NSFW, flagged pictures are hidden behind a spoiler.
        spoil = not origin.nsfw_channel
        pictures = [
            ResultPicture(
                await asyncio.to_thread((self._data_dir / image.path).read_bytes),
                image.seed,
                spoiler=spoil and image.flagged,
            )
            for image in job.images
        ]
        files = await asyncio.to_thread(result_files, pictures, limit=origin.upload_limit)
        caption = render.result_caption(job)
        view = result_view(render.result_buttons(job))
        await self._send_reliably(
            origin, caption, files, view, new_message=origin.result_as_followup
        )
        if origin.result_as_followup:
            # The private "thinking" message of a button click: say it is done.
            await self._edit_status(origin, render.status_text(Finished(job.images)))

    async def _send_reliably(
        self,
        origin: DiscordOrigin,
        content: str,
        files: list[ResultFile],
        view: discord.ui.View | None,
        *,
        new_message: bool,
    ) -> None:
        for delay in (*RETRY_DELAYS_S, None):
            try:
                await self._send(origin, content, files, view, new_message=new_message)
                return
            except _TRANSIENT as exc:
                if delay is None:
                    log.error("Discord: giving up on delivering to %s: %s", origin.channel_id, exc)
                    return
                log.warning("Discord: delivery failed (%s); trying again in %g s", exc, delay)
                await asyncio.sleep(delay)
            except discord.HTTPException as exc:
                log.error("Discord: delivery to %s refused: %s", origin.channel_id, exc)
                return

    async def _send(
        self,
        origin: DiscordOrigin,
        content: str,
        files: list[ResultFile],
        view: discord.ui.View | None,
        *,
        new_message: bool,
    ) -> None:
        """As a new message or in place of the deferred response; the channel once
        the interaction's token has expired."""
        extra = {} if view is None else {"view": view}
        if origin.token_alive:
            webhook = self._webhook(origin)
            try:
                if new_message or origin.response_id is None:
                    await webhook.send(
                        content,
                        files=_files(files),
                        allowed_mentions=_NO_MENTIONS,
                        wait=True,
                        **extra,
                    )
                else:
                    await webhook.edit_message(
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
        mention = f"<@{origin.user_id}>"
        await channel.send(
            f"{mention} {content}",
            files=_files(files),
            allowed_mentions=discord.AllowedMentions(
                users=[discord.Object(origin.user_id)], everyone=False, roles=False
            ),
            **extra,
        )

    def _webhook(self, origin: DiscordOrigin) -> discord.Webhook:
        return discord.Webhook.partial(origin.application_id, origin.token, client=self._client)


def _files(files: list[ResultFile]) -> list[discord.File]:
    # Fresh objects per try: discord.py closes a File once it has been sent.
    return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in files]
