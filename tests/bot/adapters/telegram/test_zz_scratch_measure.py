import asyncio, time
from bot.commands.base import Caller, Context
from bot.commands import imagine

async def test_measure(running_bot):
    s = running_bot.services
    events = []
    async def listener(job, ev): events.append((time.monotonic(), job.id, type(ev).__name__))
    s.scheduler.add_listener("telegram", listener)
    caller = Caller("telegram", "1", "x")
    ctx = Context(s, caller, {})
    t0 = time.monotonic()
    o = await imagine.run(ctx, "a cat --steps 2")
    while not any(e[2]=="Finished" for e in events): await asyncio.sleep(0.05)
    print("first small job", time.monotonic()-t0)
    for size in ("64x64", "256x256", "512x512"):
        events.clear(); t0 = time.monotonic()
        a = await imagine.run(ctx, f"a lighthouse --steps 40 --size {size}")
        while not any(e[2]=="Finished" for e in events): await asyncio.sleep(0.05)
        print(size, "40 steps took", time.monotonic()-t0)
    events.clear()
    a = await imagine.run(ctx, "a lighthouse --steps 40 --size 512x512")
    b = await imagine.run(ctx, "a cat --steps 40 --size 512x512")
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    print(await s.scheduler.cancel(b.job.id, caller), await s.scheduler.cancel(a.job.id, caller))
    c = await imagine.run(ctx, "a hat --steps 2")
    while not any(e[1]==c.job.id and e[2]=="Finished" for e in events): await asyncio.sleep(0.05)
    print("small job after cancel", time.monotonic()-t0, [e[2] for e in events])
