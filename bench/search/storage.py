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
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Callable, Optional, TypeVar

import optuna
import sqlalchemy
from filelock import FileLock
from optuna.trial import FrozenTrial

from ..core.errors import BenchError

JOURNAL = "journal:"
CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_S = 60  # every transaction takes the write lock (serialise_sqlite): wait for the others' turn
T = TypeVar("T")
FailedTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _engine_kwargs(url: str) -> dict:
    if url.startswith(("postgresql", "mysql")):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_S}}
    return {}


def serialise_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """Make every transaction on a SQLite ``engine`` take the database's write lock when it begins.

    Optuna hands a waiting trial to one worker by reading its state and setting it to RUNNING
    in one transaction, relying on ``SELECT ... FOR UPDATE``, which SQLite ignores; and Python's
    sqlite3 driver only begins a transaction at the first write. So two workers could both read
    WAITING and both run the trial (the second then fails with "Cannot tell a COMPLETE trial").
    ``BEGIN IMMEDIATE`` makes the read and the write one step (SQLAlchemy's recipe for pysqlite).
    """
    @sqlalchemy.event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection, connection_record) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_with_the_write_lock(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners would keep the driver's own transactions


class SerialSQLiteStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage on a SQLite file, with transactions serialised (:func:`serialise_sqlite`),
    also in a process it is pickled to."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        serialise_sqlite(self.engine)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        serialise_sqlite(self.engine)


def sqlite_file(url: str) -> Optional[Path]:
    """The database file of a ``sqlite:///`` URL, else None."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def store_lock(url: str) -> AbstractContextManager:
    """A lock beside a SQLite database, held while a store is created or migrated: two processes
    starting at once in a fresh folder would otherwise race (no lock is needed for a server)."""
    database = sqlite_file(url)
    if database is None:
        return nullcontext()
    database.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{database}.lock", timeout=300)


def damaged(url: str, exc: Exception, what: str = "study storage") -> BenchError:
    """The error for a database that cannot be read: names the file, says what to do."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    database = sqlite_file(url)
    where = f"{database}" if database else redact(url)
    fix = (f"move {database} away to start a new one (or restore it from a copy)" if database
           else "check the database, or pass another URL")
    return BenchError(f"the {what} {where} cannot be read ({reason}): it is damaged or not such a database; {fix}.")


def check_storage(url: str, option: str = "--storage", create: bool = True) -> None:
    """Connect once and disconnect, writing nothing (but, for SQLite with ``create``, the folder).

    Raises:
        BenchError: a malformed URL, a missing database driver, an unreachable server,
            credentials the server refuses, a SQLite file that is missing (``create`` False) or
            damaged, named with the URL (password hidden), the ``option`` that gave it, and a fix.
    """
    if url.startswith(JOURNAL):
        folder = Path(url[len(JOURNAL):]).expanduser().resolve().parent
        if not folder.is_dir():
            raise BenchError(f"journal storage {url}: folder {folder} does not exist; create it or "
                             f"pass another {option}")
        return
    database = sqlite_file(url)
    if database is not None and not create and not database.is_file():
        raise BenchError(f"{option} {url}: there is no {database}; run `bench run` there first, or pass the "
                         f"{option} that holds the study.")
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    except sqlalchemy.exc.NoSuchModuleError:
        raise BenchError(f"{option} {redact(url)}: unknown database kind; use sqlite:///FILE, "
                         "postgresql://USER:PASSWORD@HOST/DB, mysql+pymysql://... or journal:FILE") from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise BenchError(f"{option} {redact(url)} is not a database URL ({exc}); e.g. "
                         "sqlite:///runs/optuna.db or postgresql://USER:PASSWORD@HOST/DB") from None
    except ImportError as exc:
        raise BenchError(f"{option} {redact(url)} needs the database driver {exc.name!r}: for PostgreSQL "
                         "pip install -c constraints.txt '.[postgres]'") from None
    try:
        with engine.connect() as connection:
            if database is not None and database.is_file() and database.stat().st_size:
                connection.exec_driver_sql("PRAGMA schema_version")  # reads the header: a damaged file fails
    except sqlalchemy.exc.DatabaseError as exc:
        if database is not None:
            raise damaged(url, exc) from None
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

    kind = SerialSQLiteStorage if sqlite_file(url) is not None else optuna.storages.RDBStorage

    def connect() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, and essential here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return kind(url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=heartbeat,
                        grace_period=grace, heartbeat_stale_trial_callback=failed_trial_callback)

    with store_lock(url):
        try:
            return retry_race(connect, f"creating the tables of {redact(url)}")
        except sqlalchemy.exc.DatabaseError as exc:
            raise damaged(url, exc) from None


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
