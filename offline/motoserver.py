"""``python -m offline.motoserver``: moto's server app behind a keep-alive WSGI server.

``python -m moto.server`` serves moto with Werkzeug's development server, which
answers every request with ``Connection: close``: each AWS call the handlers make
opens a new TCP connection and moto starts a new thread for it. AWS endpoints
keep connections alive and botocore pools them, so here the same moto
application (``DomainDispatcherApplication``, the one ``moto.server`` builds,
``/moto-api/`` included) is served by cheroot, CherryPy's production server:
persistent connections, a fixed pool of worker threads, idle connections
parked in a selector rather than holding a thread.

Full garbage collections are kept out of request latency (see ``offline.heap``).

DynamoDB's item operations are made atomic (``serialise_dynamodb_items``), as on AWS.

One per-request cost of moto's dispatcher is also removed: it lists moto's
package directory (``os.listdir`` + an ``isdir`` per entry, under a global
lock) on every request to check whether the host names a service. The list
cannot change while the process runs, so it is computed once.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from offline.heap import freeze_during_warmup

__all__ = ["build_app", "main"]

# Long polls (ReceiveMessage waits up to 20 s) each hold a worker thread.
DEFAULT_THREADS = 64


ATOMIC_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "transact_write_items")


def serialise_dynamodb_items() -> None:
    """Make moto's DynamoDB item operations atomic, as DynamoDB's are.

    moto checks an UpdateItem's condition, then applies its actions, then the response is
    serialised from the live item, with nothing held in between: with concurrent requests
    two conditional writes on one item can both pass, and a response (or a GetItem) can
    show another write half applied. DynamoDB serialises the writes on one item; an engine
    that relies on it (the seq and version conditions, the stream hand-over of decision
    011) would fail locally in ways it never does on AWS. One lock around the item
    operations, and a copy of the item taken under it, restore that.
    """
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_offline_serialised", False):
        return
    lock = threading.RLock()

    def atomic(name: str) -> None:
        original = getattr(DynamoDBBackend, name)

        def call(self: object, *args: object, **kwargs: object) -> object:
            with lock:
                return copy.deepcopy(original(self, *args, **kwargs))

        call.__name__ = name
        setattr(DynamoDBBackend, name, call)

    for name in ATOMIC_OPERATIONS:
        atomic(name)
    DynamoDBBackend._offline_serialised = True  # type: ignore[attr-defined]


def build_app() -> object:
    """Moto's WSGI application, as ``moto.server`` builds it (DynamoDB items made atomic)."""
    from moto import backends

    serialise_dynamodb_items()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    return DomainDispatcherApplication(create_backend_app)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.motoserver", description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    args = parser.parse_args(argv)

    from cheroot import wsgi

    app = build_app()
    freeze_during_warmup()
    server = wsgi.Server((args.host, args.port), app, numthreads=args.threads, request_queue_size=128)
    server.shutdown_timeout = 1
    # Every worker thread of the runtime holds a pooled connection; cheroot closes idle
    # keep-alive connections beyond this limit (default 10), which the client then redials.
    server.keep_alive_conn_limit = 1024

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.prepare()  # bound and listening from here on
    threading.Thread(target=server.serve, name="motoserver", daemon=True).start()
    print(f"moto (cheroot, keep-alive) on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    # A worker thread may sit in a long poll for up to 20 s and cheroot's stop joins it;
    # the state is in memory and goes with the process, so give the stop a moment and leave.
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=2)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
