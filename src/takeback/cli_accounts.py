"""`takeback user …`: dashboard accounts, made on the server machine (there is no open sign-up page: a person's
case must not be reachable by whoever finds the server)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from takeback import config, store
from takeback.accounts import passwords

user_app = typer.Typer(help="Dashboard accounts (people who sign in at /app).", no_args_is_help=True)
_err = Console(stderr=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        _err.print("[red]The two passwords differ.[/red]")
        raise typer.Exit(2)
    return first


@user_app.command("create")
def create_command(
    email: Annotated[str, typer.Argument(help="Sign-in e-mail address.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    operator: Annotated[bool, typer.Option(help="May manage API clients, banks and webhooks.")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create an account; the password is asked for (never given on the command line, where others could see it)."""
    password = _read_password(password_stdin)
    try:
        hashed = passwords.hash_password(password, email=email)
    except passwords.WeakPassword as exc:
        _err.print(f"[red]Password: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    engine, sessions = store.open_store(config.load())
    try:
        with sessions() as session:
            try:
                user = store.create_user(session, email, hashed, display_name=name, is_operator=operator)
            except (store.UserExists, store.InvalidInput) as exc:
                _err.print(f"[red]{escape(type(exc).__name__)}: {escape(str(exc))}[/red]")
                raise typer.Exit(2) from None
            store.audit(session, "user_created", user_id=user.id, subject=user.email, detail="command line")
            session.commit()
    finally:
        engine.dispose()
    print(f"created user {user.id} <{user.email}>")


@user_app.command("add-to-case")
def add_to_case_command(
    email: Annotated[str, typer.Argument()],
    case_id: Annotated[int, typer.Argument()],
    role: Annotated[str, typer.Option(help="owner or advocate")] = "advocate",
) -> None:
    """Give an account access to a case."""
    engine, sessions = store.open_store(config.load())
    try:
        with sessions() as session:
            user = store.get_user_by_email(session, email)
            if user is None or store.get_case(session, case_id) is None:
                _err.print("[red]No such user or case.[/red]")
                raise typer.Exit(2)
            try:
                store.add_member(session, case_id, user.id, role)
            except store.InvalidInput as exc:
                _err.print(f"[red]{escape(str(exc))}[/red]")
                raise typer.Exit(2) from None
            store.audit(session, "member_added", case_id=case_id, subject=user.email, detail={"role": role})
            session.commit()
    finally:
        engine.dispose()
    print(f"{user.email} is now {role} on case {case_id}")


@user_app.command("list")
def list_command() -> None:
    engine, sessions = store.open_store(config.load())
    try:
        with sessions() as session:
            users = store.list_users(session)
    finally:
        engine.dispose()
    table = Table("id", "e-mail", "second factor", "operator", "disabled")
    for u in users:
        table.add_row(str(u.id), escape(u.email), "on" if u.totp_enabled else "off", "yes" if u.is_operator else "",
                      "yes" if u.disabled else "")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
