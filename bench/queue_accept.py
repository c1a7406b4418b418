"""How many /imagine commands Atelier accepts per second, 100 users at once.

Each command goes through the real accept path: `bot.commands.imagine.run` parses the
inline options, validates them, expands `{a|b}` variants, runs the prompt filter, and
the scheduler checks the limits, writes the job to SQLite (WAL, on disk) and queues
it. The engine is not consuming (the scheduler is not started), so only accepting is
measured. Goal: >= 1,000 commands/s on a 2-core machine.

    python bench/queue_accept.py [--users 100] [--per-user 20] [--rounds 3]

(Not `bench/queue.py`: run from this folder, that name would hide the standard
library's `queue` from every benchmark here.)
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/engine_overhead.py: import from this repository's root, not this folder
# (and not another checkout the environment has installed).
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import statistics
import tempfile
import time

from bot.avatar import AvatarPresets
from bot.commands import imagine
from bot.commands.base import Caller, Context, JobAccepted
from bot.config import (
    Config,
    EngineConfig,
    LimitsConfig,
    ModelConfig,
    SafetyConfig,
    StorageConfig,
)
from bot.delivery.courier import Courier
from bot.jobs.safety import PromptFilter
from bot.jobs.scheduler import Scheduler
from bot.records import JobStatus
from bot.services import Services
from bot.store import DB_FILENAME, Store
from engine.client import EngineClient

# Limits out of the way: this measures accepting, not refusing.
OPEN_LIMITS = LimitsConfig(jobs_per_minute=10**6, max_queued_per_user=10**6, max_queue=10**7)
BLOCKED_WORDS = ["gore", "nsfw", "nude", "blood", "weapon", "violence", "spam", "scam"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=20, help="commands each user sends")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, fresh database each")
    return parser.parse_args()


def command_text(user: int, n: int, *, variants: bool) -> str:
    """Varied commands, as people type them: options, a negative prompt, and (if
    `variants`) `{a|b}` choices, which the commands expand with dynamicprompts."""
    colour = "{red|blue|green}" if variants else ["red", "blue", "green"][n % 3]
    style = "{oil painting|watercolor}" if variants else "watercolor"
    kinds = [
        f"a {colour} fox in a hat, portrait {n} --seed {user * 1000 + n}",
        f"a lighthouse at dusk --steps 4 --ar 3:2 --no blurry --n 2 --seed {n}",
        f'a cat in a {colour} scarf --sampler "Euler a" --cfg 6 --steps 3 --seed {n}',
        f"a dog, {style}, detailed --size 64x64 --seed {n}",
    ]
    return kinds[(user + n) % len(kinds)]


async def one_round(folder: Path, users: int, per_user: int, *, variants: bool) -> dict:
    config = Config(
        engine=EngineConfig(default_model="tiny", device="cpu"),
        # Never loaded: the engine process is not started.
        models={"tiny": ModelConfig(source="tiny", default_steps=4, width=64, height=64)},
        limits=OPEN_LIMITS,
        safety=SafetyConfig(blocked_words=BLOCKED_WORDS),
        storage=StorageConfig(path=str(folder / "data")),
        base_dir=folder,
    )
    store = await Store.open(config.data_dir / DB_FILENAME)
    # The engine process is never spawned: nothing consumes the queue.
    engine = EngineClient(config.engine_settings(), max_batch=config.engine.engine_max_batch)
    scheduler = Scheduler(config, store, engine)
    services = Services(
        config=config,
        store=store,
        engine=engine,
        scheduler=scheduler,
        courier=Courier(store, scheduler.events, config.data_dir),
        prompt_filter=PromptFilter.from_config(config.safety, base_dir=folder),
        presets=AvatarPresets.load_default(),
    )
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def user(number: int) -> None:
        caller = Caller("telegram", str(10_000 + number), f"user {number}")
        ctx = Context(services, caller, {"chat_id": number})
        for n in range(per_user):
            started = time.perf_counter()
            outcome = await imagine.run(ctx, command_text(number, n, variants=variants))
            latencies.append(time.perf_counter() - started)
            kind = type(outcome).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(user(number) for number in range(users)))
    elapsed = time.perf_counter() - started
    saved = len(await store.jobs_with_status(JobStatus.QUEUED))
    await services.scheduler.stop()
    await store.close()
    return {
        "elapsed": elapsed,
        "commands": users * per_user,
        "accepted": outcomes.get(JobAccepted.__name__, 0),
        "outcomes": outcomes,
        "saved": saved,
        "latencies": latencies,
    }


async def measure(args: argparse.Namespace, tmp: Path, *, variants: bool) -> float:
    label = "with {a|b} variants" if variants else "plain"
    rates: list[float] = []
    for number in range(args.rounds):
        folder = tmp / f"{label}-{number}".replace(" ", "-")
        folder.mkdir()
        result = await one_round(folder, args.users, args.per_user, variants=variants)
        if result["accepted"] != result["commands"] or result["saved"] != result["commands"]:
            raise SystemExit(f"not every command was accepted and saved: {result['outcomes']}")
        rate = result["accepted"] / result["elapsed"]
        rates.append(rate)
        latencies = sorted(result["latencies"])
        print(
            f"{label}, round {number + 1}: {result['accepted']} commands from {args.users} "
            f"users in {result['elapsed']:.2f} s = {rate:,.0f}/s; latency p50 "
            f"{latencies[len(latencies) // 2] * 1000:.1f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
        )
    return statistics.median(rates)


async def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = await measure(args, Path(tmp), variants=False)
        mixed = await measure(args, Path(tmp), variants=True)
    print(f"accepted per second, plain prompts:         median {plain:,.0f} (goal >= 1,000)")
    print(f"accepted per second, 3 of 4 with variants:  median {mixed:,.0f}")


if __name__ == "__main__":
    asyncio.run(main())
