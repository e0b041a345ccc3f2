"""``agent run``, ``agent migrate`` and ``agent token``: the local stack, the schema and its tokens.

Both delegate to ``infra.local.stack``; ``migrate`` applies the core migrations and those of
every plugin the deployment runs (``MODEL_PLUGINS``, the characters' plugins), under the
migrations' advisory lock, to ``DATABASE_URL``, else the running local stack's database, else
the embedded Postgres (started for the migration, stopped after; never beside a running stack).
"""

from __future__ import annotations

import argparse
import os

from core.errors import MigrationError
from infra.cli.common import CliError, Io, check_reachable, describe_database, int_range


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` and ``migrate``."""
    run = groups.add_parser(
        "run",
        help="the local stack: gateway, SQS poller, scheduler, Postgres",
        description="Run the local stack (as `make run`): embedded Postgres (unless"
        " DATABASE_URL), migrations, moto's SQS, the HTTP gateway on 127.0.0.1:PORT, the"
        " embeddings poller and the tasks scheduler. Ctrl-C stops it.",
    )
    run.add_argument("--port", type=int_range(1, 65535), help="gateway port (default: $PORT, else 3000)")
    run.set_defaults(handler=run_stack)

    migrate = groups.add_parser(
        "migrate",
        help="apply the database migrations",
        description="Apply pending migrations (core and plugins) to DATABASE_URL,"
        " else the embedded Postgres; prints what was applied.",
    )
    migrate.set_defaults(handler=migrate_database)

    token = groups.add_parser(
        "token",
        help="a development token for the local stack's HTTP API",
        description="Print a token the local gateway accepts (Authorization: Bearer TOKEN), signed with"
        " the key in the stack's data directory. Deployed, tokens come from your identity provider.",
    )
    role = token.add_mutually_exclusive_group()
    role.add_argument("--admin", action="store_true", help="the admin role (agents, documents, tasks)")
    role.add_argument("--connector", metavar="SOURCE", help="a connector speaking for SOURCE (e.g. discord)")
    token.add_argument("--user", default=None, help="the subject's name (default: $USER)")
    token.add_argument("--ttl", type=int_range(60, 30 * 86400), default=12 * 3600, help="lifetime in seconds")
    token.set_defaults(handler=print_token)


def run_stack(args: argparse.Namespace, io: Io) -> int:
    """``run``: serve until Ctrl-C or SIGTERM (``infra.local.stack serve``); its exit status (1: could not start)."""
    from infra.local import stack

    if args.port is not None:
        os.environ["PORT"] = str(args.port)  # what the stack's serve command reads
    return stack.main(["serve"])


def migrate_database(args: argparse.Namespace, io: Io) -> int:
    """``migrate``: apply what is pending; prints one line per migration applied.

    The database is ``DATABASE_URL``, else the running local stack's, else the embedded
    Postgres, started for the migration and stopped after (``infra.local.stack.migration_database``).
    """
    from core.db.migrations import migrate
    from core.deployment.plugins import deployment_plugins
    from core.settings import Settings
    from infra.local.stack import migration_database
    from infra.local.startup import StartupError
    from infra.local.state import StackBusy

    plugins = deployment_plugins(Settings.from_env())  # a bad setting or character fails before connecting
    try:
        with migration_database() as url:
            check_reachable(url, migrated=False)
            try:
                applied = migrate(url, plugins=plugins)
            except MigrationError as exc:
                raise CliError(f"migration failed on the {describe_database(url)}: {exc}") from None
    except (StackBusy, StartupError) as exc:
        raise CliError(str(exc)) from None
    for name in applied:
        print(f"applied {name}", file=io.out)
    if not applied:
        print(f"the {describe_database(url)} is up to date", file=io.out)
    return 0


def print_token(args: argparse.Namespace, io: Io) -> int:
    """``token``: print a signed development token for the chosen role."""
    from core.settings.identity import IdentitySettings
    from functions.api.identity import SOURCE_PATTERN
    from infra.local.dev_tokens import DevTokens
    from infra.local.state import data_dir

    roles = IdentitySettings.from_env()
    name = args.user or os.environ.get("USER") or "developer"
    scopes: tuple[str, ...] = ()
    if args.admin:
        scopes = (roles.admin_scope,)
    elif args.connector:
        if not SOURCE_PATTERN.match(args.connector):
            raise CliError(f"--connector: {args.connector!r} is not a source name (letters, digits, _.:-)")
        scopes = (roles.connector_scope_prefix + args.connector,)
    print(DevTokens(data_dir()).mint(f"local-{name}", scopes=scopes, name=name, ttl_s=args.ttl), file=io.out)
    return 0
