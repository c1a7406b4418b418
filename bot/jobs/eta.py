"""How long things will take: measured engine speed, the running batches, and ETAs.

Work is counted in units: one denoising step of one 512×512 picture. The speed is a
moving average of seconds per unit over finished batches, so ETAs follow the GPUs the
bot actually has; before the first batch a default for the device is used. With
several batches running at once (one per replica), waiting work is shared among them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.records import GenerationRequest, Job

UNIT_PIXELS = 512 * 512
# Seconds per unit before anything was measured: a mid-range GPU, or a CPU.
DEFAULT_SECONDS_PER_UNIT = 0.1
DEFAULT_CPU_SECONDS_PER_UNIT = 3.0
SMOOTHING = 0.3  # weight of the newest measurement


def work_units(request: GenerationRequest) -> float:
    # img2img denoises only the last `strength` of the schedule.
    strength = (request.strength or 1.0) if request.init_image else 1.0
    steps = max(1.0, request.steps * strength)
    return request.count * steps * request.width * request.height / UNIT_PIXELS


@dataclass
class RunningBatch:
    """The jobs the engine is working on in one call, and how far it got."""

    id: str  # the engine call's job id: the first job's
    jobs: list[Job]
    model: str
    work: float
    done_fraction: float = 0.0
    # Each job's newest live preview (job id -> JPEG), carried by its Progress events.
    previews: dict[str, bytes] = field(default_factory=dict)

    def unfinished(self) -> list[Job]:
        return [job for job in self.jobs if not job.status.finished]


class Speed:
    def __init__(self, device: str) -> None:
        self.seconds_per_unit = (
            DEFAULT_CPU_SECONDS_PER_UNIT if device == "cpu" else DEFAULT_SECONDS_PER_UNIT
        )

    def measure(self, seconds: float, units: float) -> None:
        if units > 0 and seconds > 0:
            sample = seconds / units
            self.seconds_per_unit += SMOOTHING * (sample - self.seconds_per_unit)

    def left(self, batch: RunningBatch | None) -> float:
        """Seconds until a running batch is done (0 when nothing runs)."""
        if batch is None:
            return 0.0
        return batch.work * (1.0 - batch.done_fraction) * self.seconds_per_unit

    def until_done(
        self, work_ahead: float, job: Job, running: Iterable[RunningBatch], capacity: int = 1
    ) -> float:
        """Seconds until waiting `job` is done: the running batches, the line ahead, and
        the job itself, shared among `capacity` engines."""
        units = work_ahead + work_units(job.request)
        busy = sum(self.left(batch) for batch in running)
        return (busy + units * self.seconds_per_unit) / max(1, capacity)
