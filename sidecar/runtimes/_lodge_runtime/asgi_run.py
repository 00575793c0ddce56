"""A request's app call as a task of its own, so that ABORT (the client left, or
LodgeTimeout passed) or the end of its lane stops that request, and no other."""

import asyncio

# Seconds an app told http.disconnect (ABORT, or its lane's end) has to return before its
# task is cancelled: time to clean up, well inside ABORT_GRACE.
ABORT_CANCEL_S = 1


async def run_app(ch, loop, call_app, on_abort):
    """Runs the app's call (call_app() makes the coroutine) as a task of its own while
    ch's watcher looks for ABORT and the end of file. Once one comes, on_abort() tells the
    app (http.disconnect); after ABORT, what still runs ABORT_CANCEL_S later is cancelled
    (at the end of file it may finish: nobody waits for its answer, and its writes fail).
    Returns the exception the app ended with, None when it returned or was so cancelled."""
    timer = task = None

    def stop(cancel):
        nonlocal timer
        on_abort()
        if cancel and task is not None and not task.done():
            timer = loop.call_later(ABORT_CANCEL_S, task.cancel)

    ch.busy = True
    ch.on_stop = stop
    ch.watch()
    try:
        task = loop.create_task(call_app())
        await task
    except asyncio.CancelledError as e:
        return None if ch.aborted else e
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        return e
    finally:
        ch.on_stop = None
        if timer is not None:
            timer.cancel()
    return None
