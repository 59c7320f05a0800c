"""What agents do with drafts, stored in a real database (SQLite by default, any SQLAlchemy URL).

Every draft is stored with the message, the triage result, the model version and the
knowledge-base ids it used; every agent action (accepted, edited, rejected, with corrections) is
a feedback row. Emails, phone and card numbers are masked before anything is written unless
``mask_pii=False``. The schema is versioned: :data:`MIGRATIONS` run in order on open, each in a
transaction, and the applied version is recorded in ``schema_version``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from ..entities import mask_pii
from ..taxonomy import URGENCY_LEVELS

ACTIONS = ("accepted", "edited", "rejected")
_EDIT_DISTANCE_CAP = 4000  # characters of each text compared


def _v1(conn: sa.Connection) -> None:
    # Table objects, not raw DDL, so each dialect gets its own types and autoincrement.
    meta = sa.MetaData()
    sa.Table(
        "drafts", meta,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("intent", sa.Text, nullable=False),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("sentiment", sa.String(16), nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("kb_ids", sa.Text, nullable=False),
        sa.Column("triage_json", sa.Text, nullable=False),
        sa.Column("draft_zh", sa.Text, nullable=False),
        sa.Column("draft_en", sa.Text, nullable=False),
        sa.Column("primary_language", sa.String(16), nullable=False),
        sa.Column("needs_human", sa.Integer, nullable=False),
    )
    sa.Table(
        "feedback", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("draft_id", sa.String(64), sa.ForeignKey("drafts.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("final_text", sa.Text),
        sa.Column("corrected_intent", sa.Text),
        sa.Column("corrected_urgency", sa.String(16)),
        sa.Column("agent_id", sa.Text),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    meta.create_all(conn)


def _v2(conn: sa.Connection) -> None:
    # Edit distance is computed once at write time; the report reads it for every row. Each step
    # checks first: SQLite does not roll DDL back, so a crash halfway must be resumable.
    inspector = sa.inspect(conn)
    columns = {c["name"] for c in inspector.get_columns("feedback")}
    for column in ("edit_distance", "draft_length"):
        if column not in columns:
            conn.execute(sa.text(f"ALTER TABLE feedback ADD COLUMN {column} INTEGER"))
    if "ix_feedback_draft_id" not in {i["name"] for i in inspector.get_indexes("feedback")}:
        conn.execute(sa.text("CREATE INDEX ix_feedback_draft_id ON feedback (draft_id)"))


#: (version, migration) in order; append new ones, never edit applied ones.
MIGRATIONS: list[tuple[int, Callable[[sa.Connection], None]]] = [(1, _v1), (2, _v2)]
SCHEMA_VERSION = MIGRATIONS[-1][0]


class FeedbackError(ValueError):
    """A feedback call that cannot be stored (unknown draft, bad action or label)."""


def edit_distance(a: str, b: str) -> int:
    """Character-level Levenshtein distance (two rows of the table, O(len(a) * len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class FeedbackRow:
    """One agent action joined with its draft (what reports and retraining read)."""

    draft_id: str
    action: str
    message: str
    language: str
    intent: str
    urgency: str
    kb_ids: tuple[str, ...]
    draft_text: str
    final_text: str | None
    corrected_intent: str | None
    corrected_urgency: str | None
    agent_id: str | None
    edit_distance: int | None
    draft_length: int
    created_at: str


def _url(target: str | Path) -> str:
    text = str(target)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().resolve()}"


class FeedbackStore:
    """Drafts and agent feedback in a database.

    Parameters
    ----------
    url : str or path
        A SQLAlchemy URL (``postgresql+psycopg://user@host/db``) or a SQLite file path.
    mask_pii : bool
        Mask emails, phone and card numbers in stored messages and texts (default True).
    labels : dict, optional
        ``{"intent": [...], "urgency": [...]}`` accepted as corrections; default: the bundle's.
    create : bool
        Create a missing SQLite file and the tables of an empty database (an SQLite file holding
        another application's tables is refused; a shared PostgreSQL database is fine). False for readers
        such as reports and retraining: the database must then already be a feedback store
        (its ``schema_version``, ``drafts`` and ``feedback`` tables), so a typo or another
        application's database is an error and is left untouched. An older schema of a
        feedback store is still migrated.
    """

    def __init__(self, url: str | Path = "feedback.db", *, mask_pii: bool = True,
                 labels: dict[str, list[str]] | None = None, create: bool = True) -> None:
        self.url = _url(url)
        database = sa.engine.make_url(self.url).database
        if not create and self.url.startswith("sqlite") and database and not Path(database).is_file():
            raise FeedbackError(f"no feedback database at {database}; check the path (drafts are stored there "
                                "by `Triage(feedback_store=...)` or `triage assist --feedback-db`)")
        #: The URL with any password hidden: the only form that goes into messages and manifests.
        self.display_url = sa.engine.make_url(self.url).render_as_string(hide_password=True)
        self.mask_pii = mask_pii
        self.labels = labels
        self.engine = sa.create_engine(self.url, future=True)
        if not create:
            self._require_own_schema(database if self.url.startswith("sqlite") else None)
        elif self.url.startswith("sqlite") and database and Path(database).is_file():
            others = self._sqlite_tables(database)
            if others and "schema_version" not in others:  # a shared PostgreSQL database is fine; a file is not
                raise FeedbackError(
                    f"{database} is another application's SQLite database (tables {', '.join(sorted(others)[:5])}); "
                    f"keep feedback in its own file: pass a new path"
                )
        self.migrate()

    @staticmethod
    def _sqlite_tables(sqlite_file: str) -> set[str]:
        """The tables of a SQLite file, read without writing to it (not even a lock or journal)."""
        import sqlite3

        uri = Path(sqlite_file).resolve().as_uri() + "?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:  # "file is not a database", unreadable, ...
            raise FeedbackError(f"{sqlite_file} is not a kefu-triage feedback database ({exc}); pass the file "
                                f"that `triage serve` / FeedbackStore created, or a new path") from None

    def _require_own_schema(self, sqlite_file: str | None) -> None:
        """Refuse (writing nothing) a database that is not a feedback store."""
        where = sqlite_file or self.display_url
        hint = "pass the file that `triage serve` / FeedbackStore created" if sqlite_file else \
            "pass the database that `triage serve` / FeedbackStore created"
        if sqlite_file:
            tables = self._sqlite_tables(sqlite_file)
        else:
            tables = set(sa.inspect(self.engine).get_table_names())
        if "schema_version" not in tables:
            raise FeedbackError(f"{where} is not a kefu-triage feedback database (no schema_version table); {hint}")
        lacking = sorted({"drafts", "feedback"} - tables)
        if lacking:
            raise FeedbackError(f"{where} is not a kefu-triage feedback database (it has a schema_version table "
                                f"but no {' or '.join(lacking)} table); {hint}")

    def _mask(self, text: str | None) -> str | None:
        """What is stored: PII masked (unless disabled) and NULs dropped (PostgreSQL refuses them)."""
        if text is None:
            return None
        text = text.replace("\x00", "")
        return mask_pii(text) if self.mask_pii else text

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version now in place.

        Each migration runs in a transaction that first takes a database-wide lock (PostgreSQL
        advisory lock; SQLite write lock) and re-reads the version, so processes that open the
        same database at once apply each migration exactly once.
        """
        with self.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)"))
        for version, migration in MIGRATIONS:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7272631)"))
                elif conn.dialect.name == "sqlite":
                    conn.execute(sa.text("UPDATE schema_version SET version = version WHERE 0"))  # takes the write lock
                current = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() or 0
                if current > SCHEMA_VERSION:
                    raise FeedbackError(f"{self.display_url} has schema version {current}, newer than this "
                                        f"library's {SCHEMA_VERSION}; upgrade kefu-triage")
                if version > current:
                    migration(conn)
                    conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})
        return SCHEMA_VERSION

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() or 0)

    # ------------------------------------------------------------------ writing
    def record_draft(self, draft, result) -> None:
        """Store a draft with the triage result it was made from."""
        triage_json = json.dumps(result.to_dict(), ensure_ascii=False, default=str)
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO drafts (id, created_at, message, language, intent, urgency, sentiment, model_version,"
                " kb_ids, triage_json, draft_zh, draft_en, primary_language, needs_human) VALUES (:id, :created_at,"
                " :message, :language, :intent, :urgency, :sentiment, :model_version, :kb_ids, :triage_json,"
                " :draft_zh, :draft_en, :primary_language, :needs_human)"), {
                "id": draft.id, "created_at": datetime.now(timezone.utc).isoformat(),
                "message": self._mask(result.text), "language": result.language, "intent": result.intent.label,
                "urgency": result.urgency.level, "sentiment": result.sentiment.label,
                "model_version": result.model_version, "kb_ids": json.dumps(list(draft.kb_ids)),
                "triage_json": self._mask(triage_json), "draft_zh": self._mask(draft.zh),
                "draft_en": self._mask(draft.en), "primary_language": draft.primary_language,
                "needs_human": int(draft.needs_human)})

    def record_feedback(self, draft_id: str, action: str, *, final_text: str | None = None,
                        corrected_intent: str | None = None, corrected_urgency: str | None = None,
                        agent_id: str | None = None) -> None:
        """Store what an agent did with a draft.

        Raises
        ------
        FeedbackError
            Unknown draft id, an action other than accepted / edited / rejected, an edit without
            the final text, or a correction that is not a known label.
        """
        if action not in ACTIONS:
            raise FeedbackError(f"action must be one of {ACTIONS}, got {action!r}")
        if action == "edited" and not (final_text and final_text.strip()):
            raise FeedbackError("an 'edited' action needs final_text: the reply the agent actually sent")
        intents = (self.labels or {}).get("intent")
        if corrected_intent is not None and intents is not None and corrected_intent not in intents:
            raise FeedbackError(f"corrected_intent {corrected_intent!r} is not a known intent; one of {sorted(intents)}")
        if corrected_urgency is not None and corrected_urgency not in URGENCY_LEVELS:
            raise FeedbackError(f"corrected_urgency {corrected_urgency!r} is not one of {URGENCY_LEVELS}")
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT draft_zh, draft_en, primary_language FROM drafts WHERE id = :id"),
                               {"id": draft_id}).first()
        if row is None:
            raise FeedbackError(f"no draft with id {draft_id!r} in {self.display_url}; pass the id of a draft "
                                "made with this feedback store")
        draft_text = row.draft_en if row.primary_language == "en" else row.draft_zh
        final = self._mask(final_text)
        # Outside the write transaction, and on bounded text: it is quadratic.
        distance = edit_distance(draft_text[:_EDIT_DISTANCE_CAP], final[:_EDIT_DISTANCE_CAP]) if final is not None \
            else (0 if action == "accepted" else None)
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO feedback (draft_id, action, final_text, corrected_intent, corrected_urgency, agent_id,"
                " created_at, edit_distance, draft_length) VALUES (:draft_id, :action, :final_text,"
                " :corrected_intent, :corrected_urgency, :agent_id, :created_at, :edit_distance, :draft_length)"), {
                "draft_id": draft_id, "action": action, "final_text": final, "corrected_intent": corrected_intent,
                "corrected_urgency": corrected_urgency, "agent_id": agent_id,
                "created_at": datetime.now(timezone.utc).isoformat(), "edit_distance": distance,
                "draft_length": len(draft_text)})

    # ------------------------------------------------------------------ reading
    def rows(self) -> list[FeedbackRow]:
        """Every feedback row joined with its draft, oldest first."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(
                "SELECT f.draft_id, f.action, d.message, d.language, d.intent, d.urgency, d.kb_ids, d.draft_zh,"
                " d.draft_en, d.primary_language, f.final_text, f.corrected_intent, f.corrected_urgency,"
                " f.agent_id, f.edit_distance, f.draft_length, f.created_at"
                " FROM feedback f JOIN drafts d ON d.id = f.draft_id ORDER BY f.id"))
            return [FeedbackRow(r.draft_id, r.action, r.message, r.language, r.intent, r.urgency,
                                tuple(json.loads(r.kb_ids)), r.draft_en if r.primary_language == "en" else r.draft_zh,
                                r.final_text, r.corrected_intent, r.corrected_urgency, r.agent_id,
                                r.edit_distance, r.draft_length or 0, r.created_at) for r in result]

    def corrections(self) -> list[dict]:
        """Messages with agent-corrected labels (latest correction per draft), for retraining."""
        latest: dict[str, dict] = {}
        for row in self.rows():
            if row.corrected_intent or row.corrected_urgency:
                entry = latest.setdefault(row.draft_id, {"text": row.message})
                if row.corrected_intent:
                    entry["intent"] = row.corrected_intent
                if row.corrected_urgency:
                    entry["urgency"] = row.corrected_urgency
        return list(latest.values())
