"""The paper engine: pure, deterministic, standard library only.

No aiohttp, aiosqlite, asyncio, logging, clocks or randomness in here (tests enforce it).
"""
