"""How every command ends: an exit status, one sentence on stderr for what went wrong, never a traceback; and the
one rule for text on a terminal (`escaped`: control characters in data shown, never obeyed).

Exit status: 0 done; 1 the work finished but some of it failed (jobs in the errors table, a query error) or a run
was cut short; 2 usage, configuration, authentication, lock or dataset problems, with nothing written.
Warnings (`warnings.warn`, e.g. a dataset read from an older commit) become `warning: ...` lines on stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import click

from oqtopus_data.errors import AuthError, ConfigError, OqtopusDataError, StoreError
from oqtopus_data.redact import MIN_REDACTED_TOKEN

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Set to 1 to let an unexpected exception show its traceback (for a bug report).
DEBUG_ENV = "OQTOPUS_DATA_DEBUG"
_META_KEY = "oqtopus_data.token"  # where the token is kept in the root context's meta


#: C0 controls, DEL and C1 controls (ESC ] 0;... BEL sets a window title, OSC 52 writes the clipboard).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escaped(text: str, keep: str = "") -> str:
    """`text` with every control character (but those in `keep`) written as an escape: ESC as \\x1b, a newline as
    \\n; what a terminal shows of it is the text, never a command to the terminal."""
    def one(match: re.Match[str]) -> str:
        char = match.group()
        return char if char in keep else _NAMED.get(char, f"\\x{ord(char):02x}")

    return _CONTROLS.sub(one, text)


def is_terminal(err: bool = False) -> bool:
    """Whether standard output (or error) is a terminal: data shown there has its control characters escaped."""
    return click.get_text_stream("stderr" if err else "stdout").isatty()


def program_name() -> str:
    """The name the user typed (oqtopus-export, oqtopus-data), for the start of a message."""
    ctx = click.get_current_context(silent=True)
    return (ctx.find_root().info_name if ctx else None) or "oqtopus-data"


def remember_token(token: str | None) -> None:
    """Make `fail` and `say` take this token out of every message from now on."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and token:
        ctx.find_root().meta[_META_KEY] = token


def hide_token(text: str) -> str:
    """`text` without the remembered token (only a token long enough to be told apart from ordinary words)."""
    return _hidden(text, _token())


def _token() -> str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().meta.get(_META_KEY) if ctx else None


def _hidden(text: str, token: str | None) -> str:
    if token and len(token) >= MIN_REDACTED_TOKEN:
        text = text.replace(token, "<token>")
    return text


def say(message: str) -> None:
    """One line on stderr, prefixed with the program's name (control characters escaped on a terminal: a message
    may quote server text, such as the devices an export has)."""
    line = f"{program_name()}: {hide_token(message)}"
    click.echo(escaped(line) if is_terminal(err=True) else line, err=True)


def speaker() -> Callable[[str], str]:
    """`say`'s line maker bound to this command's name and token, for other threads and signal handlers (click's
    context belongs to the thread that runs the command): it returns the line to write."""
    name, token = program_name(), _token()
    return lambda message: f"{name}: {_hidden(message, token)}"


def fail(message: str, status: int) -> NoReturn:
    """Say `message` and exit with `status`."""
    say(message)
    sys.exit(status)


def reader_failure(exc: OqtopusDataError) -> NoReturn:
    """End a command that reads a dataset on a library error: the dataset, the configuration or the server."""
    if isinstance(exc, ConfigError | AuthError | StoreError):
        fail(str(exc), EXIT_USAGE)
    fail(str(exc), EXIT_FAILED)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run a command: library errors become one sentence and an exit status, warnings `warning:` lines, and an
    unexpected exception one sentence asking for a bug report (its traceback only with OQTOPUS_DATA_DEBUG=1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = _warning_printer()
        try:
            yield
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit,
                KeyboardInterrupt):
            raise
        except OqtopusDataError as exc:
            reader_failure(exc)
        except BrokenPipeError:  # `oqtopus-data sql ... | head`: the reader has what it wanted
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(EXIT_FAILED)
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"cannot use{where}: {exc.strerror or exc}", EXIT_USAGE)
        except Exception as exc:
            if _engine_error(exc):  # the fixed queries of info and report: the export's files cannot be read
                fail(f"cannot read the export: {str(exc).strip().splitlines()[0]}", EXIT_USAGE)
            if os.environ.get(DEBUG_ENV):
                raise
            fail(f"internal error ({type(exc).__name__}: {exc}); please report it with the command that caused "
                 f"it ({DEBUG_ENV}=1 shows where it happened)", EXIT_FAILED)


def _engine_error(exc: Exception) -> bool:
    """Whether `exc` is DuckDB's (without importing DuckDB: if it is not loaded, the error is not its)."""
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.Error)


def _warning_printer() -> Any:
    shown: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *_args: Any, **_kwargs: Any) -> None:
        if not issubclass(category, UserWarning):
            return  # library deprecations and the like are not the user's business
        for line in str(message).splitlines():
            if line.strip() and line not in shown:
                shown.add(line)
                text = f"warning: {hide_token(line)}"
                click.echo(escaped(text) if is_terminal(err=True) else text, err=True)

    return show


class Command(click.Command):
    """A click command run under `guarded`."""

    def invoke(self, ctx: click.Context) -> Any:
        with guarded():
            return super().invoke(ctx)


class Group(click.Group):
    """A click group whose commands run under `guarded`."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        with guarded():
            return super().invoke(ctx)
