"""The Lodge Python workers' own modules, imported by ../wsgi_worker.py and
../asgi_worker.py before anything of the tenant's (the package name is one no tenant will
use, so the app cannot shadow it):

    constants  frame codes and limits, generated from ../../src/protocol/protocol.json
    frames     frame layouts (PROTOCOL.md), frame building
    process    exit, the tenant's log, FAIL, hang-up
    start      the START frame: what to load, the tenant's LodgeEnv
    channel    lodged's socket: the input buffer, frame parsing, ABORT polling, sending
    body       wsgi.input and wsgi.file_wrapper
    response   start_response, header validation, the response's frames
    loader     source-only imports, load_app, tracebacks and error descriptions
    scoreboard the worker's slot of its pool's scoreboard (sidecar/src/scoreboard/LAYOUT.md)
    serve      the request loop: REQ to environ, the app's call, END or ERROR
    entry      what both entries do: START, the app's process, load, READY or FAIL, serve
    asgi_scope the ASGI HTTP scope from a request's REQ pairs
    asgi_serve the ASGI worker: the event loop, receive() and send() of a request
    asgi_lanes the lane server: a task per lane, each serving its own requests at once
    asgi_lane  a lane: a frame stream the loop reads and writes without blocking in it
    asgi_run   a request's app call as its own task, stopped on ABORT
    asgi_lifespan the lifespan scope: startup before READY, shutdown on leaving
    asgi_input the request's input read on demand, the loop waiting on the socket
    asgi_websocket the websocket scope over mod_lodge's tunnel
    ws_codec   WebSocket framing: the handshake key, the client's frames, the server's
"""
