"""Command line: ``python -m app serve | export-schema | rotate-keys | move-host | dev-token --user NAME``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from app.domain.errors import ConfigurationError
from app.observability import configure_logging
from app.settings import load_settings
from app.settings.model import Settings
from app.settings.values import Secret

# After SIGTERM, how long requests in flight may still finish before they are cancelled. Without a
# bound uvicorn waits for every one of them, and a request walking a slow host kept a worker alive
# for ten minutes (issue 11). With Kubernetes' 30 s: 5 s preStop + this + the lifespan's 5 s drain.
SHUTDOWN_GRACE_SECONDS = 10


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


class _Terminated(Exception):
    """SIGTERM arrived: unwind, so that whatever the command started is stopped in order."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # Once is enough: a second SIGTERM must not cut the embedded database's stop() short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While inside, SIGTERM raises ``_Terminated`` instead of ending the process on the spot (the
    default), which would leave the embedded database child to the parent-death signal: stopped
    about 2 s later on Linux, an orphan elsewhere."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then stop the embedded database (if started here) and exit 0.

    uvicorn handles both signals while it serves: it lets the requests in flight finish (for at most
    ``SHUTDOWN_GRACE_SECONDS``, then cancels them) and runs the lifespan's shutdown, then restores
    the handlers it found and raises the signal again. For SIGTERM the handler it finds is ``_raise_terminated``, so the ``ExitStack`` of ``_serve`` unwinds and
    ``EmbeddedMongo.stop()`` closes the database's files before the process exits.
    """
    settings = _settings()
    configure_logging(settings.log_level)
    with contextlib.suppress(_Terminated), _sigterm_unwinds():
        _serve(args, settings)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from app.composition import Seams
    from app.main import create_app
    from app.metrics import MULTIPROCESS_VARIABLE, Metrics, prepare_multiprocess_directory, shared_registry
    from app.metrics_listener import metrics_listener
    from app.storage.mongo import EmbeddedMongo, embedded_storage_path

    with contextlib.ExitStack() as stack:
        if settings.mongodb_uri is None:
            # Started here, not per worker, so that several workers share one embedded database.
            embedded = stack.enter_context(EmbeddedMongo(embedded_storage_path(settings.data_dir)))
            settings = replace(settings, mongodb_uri=Secret(embedded.uri))
            os.environ["MONGODB_URI"] = embedded.uri
        metrics_dir = settings.prometheus_multiproc_dir
        if metrics_dir is None and args.workers > 1:
            # Without a shared directory each worker would answer /metrics with its own numbers.
            shared = stack.enter_context(tempfile.TemporaryDirectory(prefix="git-integrations-metrics-"))
            metrics_dir = Path(shared)
            os.environ[MULTIPROCESS_VARIABLE] = str(metrics_dir)
        if metrics_dir is not None:
            prepare_multiprocess_directory(metrics_dir)
        host = args.host or settings.host
        port = args.port or settings.port
        if settings.production and settings.metrics_port is None:
            print(
                "serve: /metrics is not served (production serves it only on METRICS_PORT)", file=sys.stderr
            )
        # One worker: the listener exposes its registry; several: what they all write to the directory.
        metrics = Metrics()
        if settings.metrics_port is not None:
            registry = metrics.exposed_registry() if metrics_dir is None else shared_registry(metrics_dir)
            try:
                stack.enter_context(metrics_listener(host, settings.metrics_port, registry))
            except OSError as exc:
                print(
                    f"serve: cannot listen on {host}:{settings.metrics_port} (METRICS_PORT): {exc.strerror or exc}",
                    file=sys.stderr,
                )
                raise SystemExit(3) from None
        if args.workers > 1:
            from uvicorn.supervisors import Multiprocess

            config = uvicorn.Config(
                "app.main:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=args.workers,
                log_config=None,
                proxy_headers=True,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            )
            # What uvicorn.run does for several workers, with a listening socket of our own (see
            # tcp_listening_socket); the workers inherit it.
            try:
                sock = stack.enter_context(tcp_listening_socket(host, port))
            except OSError as exc:
                print(f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
                raise SystemExit(3) from None
            print(f"GraphiQL: http://{host}:{port}/graphql ({args.workers} workers)", file=sys.stderr)
            Multiprocess(config, sockets=[sock]).run()
        else:
            print(f"GraphiQL: http://{host}:{port}/graphql", file=sys.stderr)
            uvicorn.run(
                create_app(settings, Seams(metrics=metrics)),
                host=host,
                port=port,
                log_config=None,
                proxy_headers=True,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            )


def tcp_listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` whose protocol says TCP, inheritable by worker processes.

    uvicorn binds the socket it shares between workers with protocol 0, and asyncio turns Nagle's
    algorithm off (TCP_NODELAY) only on accepted sockets whose protocol is IPPROTO_TCP (they inherit
    the listener's). With Nagle on, every response — written as headers, then body — waited for the
    client's delayed ACK: about 44 ms added to each request on Linux. One worker needs none of this:
    its event loop creates the socket itself, with the protocol getaddrinfo gives (TCP).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def export_schema(args: argparse.Namespace) -> int:
    from app.graphql.schema import schema

    sys.stdout.write(schema.as_str().rstrip("\n") + "\n")
    return 0


def rotate_keys(args: argparse.Namespace) -> int:
    from app.security.crypto import TokenCipher
    from app.storage.integrations import IntegrationRepository
    from app.storage.links import LinkStore
    from app.storage.mongo import Database, EmbeddedMongo, embedded_storage_path

    settings = _settings()
    configure_logging(settings.log_level)

    async def run(uri: str) -> int:
        # SIGTERM asks the rotation to stop between two documents. (Cancelling the task instead is not
        # reliable: PyMongo may swallow a cancellation that lands inside an operation and retry it.)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        database = Database(uri, settings.mongodb_database)
        cipher = TokenCipher(settings.encryption_keys)
        try:
            count = await IntegrationRepository(database, cipher).rotate_keys(
                keep_going=lambda: not stop.is_set()
            )
            count += await LinkStore(database, cipher).rotate_keys(keep_going=lambda: not stop.is_set())
        finally:
            await database.close()
        if stop.is_set():
            # Every secret is still readable with the configured keys (old or new); see rotate_keys().
            print(
                f"rotate-keys: stopped by SIGTERM after re-encrypting {count} secret(s); run it again",
                file=sys.stderr,
            )
            return 1
        print(f"re-encrypted {count} secret(s) under key {cipher.primary_kid!r}")
        return 0

    def run_then_guard(uri: str) -> int:
        try:
            return asyncio.run(run(uri))
        finally:
            # Closing the loop put the default SIGTERM handler back; until the embedded database has
            # stopped, one more SIGTERM is ignored rather than ending the process before it.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    try:
        with _sigterm_unwinds():
            if settings.mongodb_uri is not None:
                return run_then_guard(settings.mongodb_uri.reveal())
            with EmbeddedMongo(embedded_storage_path(settings.data_dir)) as embedded:
                return run_then_guard(embedded.uri)
    except _Terminated:  # while the embedded database was starting
        print("rotate-keys: stopped by SIGTERM before it started; run it again", file=sys.stderr)
        return 1


def move_host(args: argparse.Namespace) -> int:
    """Point the integrations of a Git host that moved to a new address at it, re-encrypted for it."""
    from urllib.parse import urlsplit

    from app.security.crypto import TokenCipher
    from app.storage.integrations import IntegrationRepository
    from app.storage.listings import ListingStore
    from app.storage.mongo import Database, EmbeddedMongo, embedded_storage_path

    addresses = {"--from": args.source, "--to": args.target, "--api-url": args.api_url}
    for option, value in addresses.items():
        parts = urlsplit(value or "https://x")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or "@" in parts.netloc:
            print(
                f"move-host: {option} must be an http(s) URL such as https://gitlab.example.com",
                file=sys.stderr,
            )
            return 2
    settings = _settings()
    configure_logging(settings.log_level)

    async def run(uri: str) -> int:
        database = Database(uri, settings.mongodb_database)
        try:
            repository = IntegrationRepository(database, TokenCipher(settings.encryption_keys))
            moved = await repository.move_host(args.source, args.target, args.api_url)
            listings = ListingStore(database)
            for integration_id in moved.moved:  # listed at the old address: listed again when asked
                await listings.delete_for_integration(integration_id)
        finally:
            await database.close()
        print(
            f"moved {len(moved.moved)} integration(s) from {args.source.rstrip('/')} to {args.target.rstrip('/')}"
        )
        if moved.left:
            print(
                f"move-host: {moved.left} integration(s) left where they were (see the log)", file=sys.stderr
            )
            return 1
        return 0

    if settings.mongodb_uri is not None:
        return asyncio.run(run(settings.mongodb_uri.reveal()))
    with EmbeddedMongo(embedded_storage_path(settings.data_dir)) as embedded:
        return asyncio.run(run(embedded.uri))


def dev_token(args: argparse.Namespace) -> int:
    from app.security.auth import issue_development_token

    settings = _settings()
    try:
        token = issue_development_token(
            settings, args.user, lifetime_seconds=args.hours * 3600, scope=args.scope, act_for=args.act_for
        )
        print(token)
    except RuntimeError as exc:
        print(f"dev-token: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # The same commands as ``python -m app`` and as the ``git-integrations`` console script (pyproject.toml).
    prog = "git-integrations" if Path(sys.argv[0]).name == "git-integrations" else "python -m app"
    parser = argparse.ArgumentParser(prog=prog, description="Git integrations service")
    commands = parser.add_subparsers(dest="command", required=True)
    p_serve = commands.add_parser("serve", help="serve the GraphQL API (GraphiQL at /graphql)")
    p_serve.add_argument("--host", help="overrides HOST")
    p_serve.add_argument("--port", type=int, help="overrides PORT")
    p_serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p_serve.set_defaults(func=serve)
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)").set_defaults(
        func=export_schema
    )
    commands.add_parser("rotate-keys", help="re-encrypt stored tokens under the first key").set_defaults(
        func=rotate_keys
    )
    p_move = commands.add_parser(
        "move-host", help="point the integrations of a Git host at its new address (re-encrypted for it)"
    )
    p_move.add_argument(
        "--from", dest="source", required=True, help="the old web address, e.g. https://git.old.example"
    )
    p_move.add_argument(
        "--to", dest="target", required=True, help="the new web address, e.g. https://git.example.com"
    )
    p_move.add_argument(
        "--api-url", help="the new API address (default: the stored one with --from replaced by --to)"
    )
    p_move.set_defaults(func=move_host)
    p_token = commands.add_parser("dev-token", help="print a development JWT for GraphiQL")
    p_token.add_argument("--user", required=True, help="the JWT's sub: who owns the integrations")
    p_token.add_argument("--hours", type=int, default=12, help="lifetime in hours (default 12)")
    p_token.add_argument("--scope", help="a platform service's scopes, e.g. 'git:deploy' or 'git:clone'")
    p_token.add_argument("--act-for", help="with --scope: the user the service acts for")
    p_token.set_defaults(func=dev_token)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
