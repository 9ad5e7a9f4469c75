"""Batch mode: stdin is not a terminal, so lines are read and sent one by one.

Each command waits for its reply; message lines after a 354 go out without waiting
until the final ".".  Nothing ever prompts.  The exit status says whether the last
reply was a success (or which connect-time stage failed).
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from ..status import ExitStatus
from .core import ShellCore


async def run_batch(core: ShellCore, stdin: TextIO) -> ExitStatus:
    status = await core.connect()
    if status is not ExitStatus.OK:
        await core.close()
        return status
    loop = asyncio.get_running_loop()
    quit_sent = False
    while not core.quit_requested:
        raw = await loop.run_in_executor(None, stdin.readline)
        if not raw:
            break
        line = raw.rstrip("\n").removesuffix("\r")
        if not core.session.connected:
            core.renderer.error(f"not sent (connection closed): {line}")
            core.status = ExitStatus.PROTOCOL
            break
        await core.handle_line(line)
        if line.strip().upper() == "QUIT":
            quit_sent = True
    status = core.exit_status()
    session = core.session
    if status is ExitStatus.OK and not quit_sent and not session.connected and (
        session.closed_reason and session.closed_reason != "closed by the client"
    ):
        status = ExitStatus.PROTOCOL
    if core.session.connected and not quit_sent and not core.session.in_data:
        await core.session.send("QUIT", origin="shell")
    await core.close()
    return status
