"""Run a local server (the sandbox, the mock) in the foreground until a signal stops it.

Ctrl-C (SIGINT) cancels the running task through ``asyncio.run``; SIGTERM (``kill``, service
managers, and background jobs whose SIGINT the shell ignores) ends the wait the same clean
way. Both leave through the server's own ``finally``, so it closes its sockets and removes
its temporary files.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..status import ExitStatus


async def run_until_signal(banner: Sequence[str], out: TextIO,
                           done: Awaitable[object] | None = None) -> bool:
    """Print ``banner``, then wait for SIGTERM or ``done`` (if given); True if ``done`` came.

    Ctrl-C cancels the caller's task as usual (``serve`` turns it into its status).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    term_handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows; not main thread
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        term_handled = True
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if done is not None:
        waiters.append(asyncio.ensure_future(done))
    try:
        out.write("\n".join(banner) + "\n")
        out.flush()
        finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        return len(waiters) > 1 and waiters[1] in finished
    finally:
        for waiter in waiters:
            waiter.cancel()
        if term_handled:
            loop.remove_signal_handler(signal.SIGTERM)


def serve(server: Callable[[], Coroutine[Any, Any, ExitStatus]],
          interrupted: Callable[[], ExitStatus]) -> ExitStatus:
    """``asyncio.run(server())``; after Ctrl-C, what ``interrupted()`` says (it reports)."""
    try:
        return asyncio.run(server())
    except KeyboardInterrupt:
        return interrupted()


def make_server_context(names: Sequence[str], ca_out: str | Path) -> ssl.SSLContext:
    """A server context with a fresh trustme certificate for ``names``; the CA goes to
    ``ca_out`` (PEM) for the client to trust."""
    import trustme  # only when a certificate is made

    ca = trustme.CA(organization_name="smtpshell mock")
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca.cert_pem.write_to_path(str(ca_out))
    return context
