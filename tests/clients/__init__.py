"""The suite's one client toolkit: every client a test talks to the server with, and the wire
helpers they share (tests import from here, never from another test module).

- ``wire`` — URLs and request targets, the open packet, namespace prefixes, ``js_len``,
  revision 3 payloads, raw HTTP/1.1 requests, masked WebSocket frames (no I/O);
- ``http`` — one aiohttp request as it came (``fetch``), a byte-level connection
  (``RawConnection``), the official suites' ``SuiteClient``, blocking ones for other processes;
- ``polling`` — Engine.IO v4 (``Polling``) and revision 3 (``V3Polling``) long-polling sessions,
  and a blocking Socket.IO session (``BlockingPolling``);
- ``ws`` — aiohttp WebSocket helpers, the byte-level ``RawWebSocket`` and its ``FrameReader``,
  a client that stops reading (``stalled_client``);
- ``sio`` — the raw Socket.IO client (``RawClient``), the recording python-socketio client
  (``SioClient``) and ``Clients``, which makes and closes them (the ``clients`` fixture);
- ``recovering`` — ``RecoveringClient`` (connection state recovery as a real client does it);
- ``node`` — the official JS client in Node (``NodeClient``, ``NodeScript``; ``js/``);
- ``server_side`` — what a test sees inside the server (``server_objects``, ``EngineRecorder``);
- ``loops`` — the event loops tests run on and ``wait_for``;
- ``fuzz`` — the fuzz harness (``tests/test_fuzz.py``, ``tests/fuzz_long.py``);
- ``churn`` — the churn harness: every way a connection ends, rounds against a server process
  (``tests/test_churn.py``, ``bench/churn_memory.py``).
"""
