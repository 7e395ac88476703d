"""Optuna storages from URLs: SQLite, PostgreSQL, MySQL (any SQLAlchemy URL, through Optuna's
RDB storage, with heartbeats) and journal files (``journal:PATH``).

Several workers may open the same storage at the same moment, on a fresh schema: connecting is
checked first (so an unreachable server or wrong credentials fail before anything is written),
and creating the tables or the study is retried when another worker wins the race.
"""
from __future__ import annotations

import random
import re
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, TypeVar

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial

from .errors import BenchError

JOURNAL = "journal:"
CONNECT_TIMEOUT_S = 10
T = TypeVar("T")
FailedTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _engine_kwargs(url: str) -> dict:
    if url.startswith(("postgresql", "mysql")):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def check_storage(url: str) -> None:
    """Connect once and disconnect, writing nothing.

    Raises:
        BenchError: a malformed URL, a missing database driver, an unreachable server, or
            credentials the server refuses, named with the URL (password hidden) and a fix.
    """
    if url.startswith(JOURNAL):
        folder = Path(url[len(JOURNAL):]).expanduser().resolve().parent
        if not folder.is_dir():
            raise BenchError(f"journal storage {url}: folder {folder} does not exist; create it or "
                             "pass another --storage")
        return
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    except sqlalchemy.exc.NoSuchModuleError:
        raise BenchError(f"--storage {redact(url)}: unknown database kind; use sqlite:///FILE, "
                         "postgresql://USER:PASSWORD@HOST/DB, mysql+pymysql://... or journal:FILE") from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise BenchError(f"--storage {redact(url)} is not a database URL ({exc}); e.g. "
                         "sqlite:///runs/optuna.db or postgresql://USER:PASSWORD@HOST/DB") from None
    except ImportError as exc:
        raise BenchError(f"--storage {redact(url)} needs the database driver {exc.name!r}: for PostgreSQL "
                         "pip install -c constraints.txt '.[postgres]'") from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        hint = ("check the user name and password in the URL" if "authentication" in reason or "password" in reason
                else "check that the database server is running and reachable from this machine")
        raise BenchError(f"cannot connect to the study storage {redact(url)}: {reason}; {hint}") from None
    finally:
        engine.dispose()


def make_storage(url: str, heartbeat: int, grace: int,
                 failed_trial_callback: Optional[FailedTrialCallback] = None) -> optuna.storages.BaseStorage:
    """The storage behind ``url``: RDB with heartbeats every ``heartbeat`` s (a trial silent for
    ``grace`` s is failed and handed to ``failed_trial_callback``), or a journal file (Optuna's
    journal storage has no heartbeats: a dead worker's trial stays RUNNING there)."""
    check_storage(url)
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len(JOURNAL):]))

    def connect() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, and essential here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=heartbeat,
                                              grace_period=grace, heartbeat_stale_trial_callback=failed_trial_callback)

    return retry_race(connect, f"creating the tables of {redact(url)}")


def retry_race(action: Callable[[], T], what: str, attempts: int = 6) -> T:
    """``action()``, again after a random pause when a concurrent worker made it fail (two workers
    creating the same tables or study at once: a unique-constraint or lock error)."""
    for attempt in range(attempts):
        try:
            return action()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.ProgrammingError, optuna.exceptions.StorageInternalError) as exc:
            if attempt == attempts - 1:
                raise BenchError(f"{what} failed {attempts} times: {str(exc).splitlines()[0]}") from None
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))
    raise AssertionError("unreachable")
