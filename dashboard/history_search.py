"""What the history's search box means, decided by the shape of what was typed.

One kind of index per shape instead of a substring scan of every column:

- a whole id (a GUID, with or without braces): an AAD object id or caller id
  compared whole (``upper()`` B-trees), the Graph call id by its key;
- a phone number (digits, spaces and ``+ ( ) - .``; 6+ digits, or 2+ after a
  ``+``): its digits
  are the start of a phone participant's or phone caller's number, or its end (a
  national number typed without the country code: ``425 555 0100`` finds
  ``+14255550100``);
- anything else is words: every word is the start of a word of one person's name,
  or of the call's subject and caller name (``ana lop`` finds Ana Lopez,
  ``incident`` the "Incident bridge" calls). A single word is also compared whole
  with identity and caller ids (ids that are not GUIDs: guests, ACS users).

The call's own columns are its subject, its caller (name and id) and its party:
whom the bot called or passed the call to (``CallSummary.party_display``,
``party_ids``), searched by name with the subject and caller, by id and number
as whole tokens of ``party_ids``.

A Graph call id is always tried (its unique key). The SQL here must stay identical
to the index expressions of migrations ``calls.0020_history_search_by_shape`` and
``calls.0032_call_party``.
SQLite runs the same shapes as LIKE scans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from callbot.graph.resources import normalise_id

GUID = re.compile(r"\{?[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\}?")
PHONE = re.compile(r"\+?[\d\s().-]+")
# Letters and digits, as PostgreSQL's text-search parser splits words (an
# underscore, a hyphen or an apostrophe separates them).
WORD = re.compile(r"[^\W_]+")
# Words of a search that count; more add nothing but query size.
MAX_WORDS = 8
# Participants and calls as the search's SQL names them: ``{t}`` is the table
# (or the probe's alias ``m``).
PARTICIPANT = '"calls_participant"'
CALL = '"calls_call"'


@dataclass(frozen=True)
class SearchSQL:
    """A search as SQL: ``people`` on a participant row (``{t}`` its table or
    alias) with ``people_params``; ``own`` on the call's own columns. ``probe``
    and ``own_probe`` say the same without an index, cheaper per row, for the
    page that walks the calls and tests each one (a common search)."""

    shape: str
    people: str
    people_params: tuple[object, ...]
    own: Q
    probe: str = ""
    probe_params: tuple[object, ...] = ()
    own_probe: Q | None = None
    # Words only: ``own_probe`` in two parts, the words' row test of the subject
    # and caller name, and the call's ids compared whole (Graph call id, caller
    # id), for a common word's page (``history_query._common_words``).
    own_words: str = ""
    own_words_params: tuple[object, ...] = ()
    own_exact: Q | None = None

    def people_q(self) -> Q:
        """``people`` as a filter on ``Participant``."""
        return _raw(self.people.format(t=PARTICIPANT), self.people_params)

    def probe_where(self) -> tuple[str, tuple[object, ...]]:
        """The people's test on the probe's alias ``m``."""
        if self.probe:
            return self.probe.format(t="m"), self.probe_params
        return self.people.format(t="m"), self.people_params

    def own_test(self) -> Q:
        """The call's own test, row by row."""
        return self.own if self.own_probe is None else self.own_probe

    def own_words_q(self) -> Q:
        """``own_words`` as a filter on ``Call``. On PostgreSQL in ``coalesce(…,
        FALSE)``, which changes no result (the columns are never null) but the
        estimate: PostgreSQL prices three text tests of an expression it has no
        statistics for at about one call in a million, a LIMIT then looks useless
        to it, and an export chunk became a sequential scan and sort of every
        call (1.9 s on the 1,000,000-call bench); as an opaque expression it is
        half the calls, as the per-call probe it stands in for was."""
        if _postgres():
            return _raw(f"coalesce({self.own_words}, FALSE)", self.own_words_params)
        return _raw(self.own_words, self.own_words_params)


def _raw(sql: str, params: tuple[object, ...]) -> Q:
    # The SQL is this module's; what was typed travels as parameters only.
    return Q(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _digits(column: str) -> str:
    if _postgres():
        return f"regexp_replace({column}, '[^0-9]', '', 'g')"
    # SQLite: the separators people and Graph write, removed one by one.
    for sep in ("+", " ", "-", "(", ")", "."):
        column = f"replace({column}, '{sep}', '')"
    return column


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _phone_sql(column: str, digits: str) -> tuple[str, tuple[object, ...]]:
    """The digits of ``column`` start or end with ``digits`` (only digits)."""
    expr = _digits(column)
    if _postgres():
        # Both sides are ranges on text_pattern_ops B-trees.
        return (
            f"({expr} LIKE %s OR reverse({expr}) LIKE %s)",
            (digits + "%", digits[::-1] + "%"),
        )
    return f"({expr} LIKE %s OR {expr} LIKE %s)", (digits + "%", "%" + digits)


# Word prefixes shorter than this are not indexed: a shorter word typed matches
# whole words only ("li" finds Li, not Lina).
PREFIX_MIN = 3
# The indexed form (migration calls.0019): every word of the text and each of its
# prefixes of PREFIX_MIN letters or more, as exact lexemes. GIN then intersects
# plain posting lists (skipping through the longer ones) where a prefix query
# (``'yam':*``) would first gather every lexeme it covers into a bitmap: ten
# times slower for two words.
PREFIXES = "history_word_prefixes({text})"


def tsquery(words: list[str], *, prefix: bool = False) -> str:
    """``'jane' & 'yam'`` for the prefix index; with ``prefix``, ``'jane':* &
    'yam':*`` for ``to_tsvector`` (the probe). A word shorter than PREFIX_MIN is
    whole in both. Quoted; words hold only letters and digits."""
    marks = [":*" if prefix and len(w) >= PREFIX_MIN else "" for w in words]
    return " & ".join(f"'{w.lower()}'{m}" for w, m in zip(words, marks, strict=True))


def _words_sql(
    columns: list[str], words: list[str], *, probe: bool = False
) -> tuple[str, tuple[object, ...]]:
    """Every word starts a word of ``columns`` (joined by a space); a word
    shorter than PREFIX_MIN is a whole word. ``probe``: without the index."""
    text = " || ' ' || ".join(columns)
    if _postgres():
        if probe:
            # Row by row: a substring test first (PostgreSQL runs the cheaper
            # condition first), so most rows never reach to_tsvector.
            rough = " AND ".join(f"({text}) ILIKE %s" for _ in words)
            return (
                f"({rough} AND to_tsvector('simple', {text}) "
                "@@ to_tsquery('simple', %s))",
                (*(f"%{like_escape(w)}%" for w in words), tsquery(words, prefix=True)),
            )
        return (
            f"{PREFIXES.format(text=text)} @@ to_tsquery('simple', %s)",
            (tsquery(words),),
        )
    # SQLite: Django's REGEXP (Python's re): the word starts the text or follows
    # anything that is not a letter or digit.
    clauses = [f"({text}) REGEXP %s" for _ in words]
    params = tuple(
        rf"(?i)(?:^|[\W_]){re.escape(w)}"
        + ("" if len(w) >= PREFIX_MIN else r"(?:$|[\W_])")
        for w in words
    )
    return "(" + " AND ".join(clauses) + ")", params


def _party(*patterns: str) -> Q:
    """The call's party ids (``CallSummary.party_ids``, each between spaces) match
    one of the LIKE ``patterns`` (the trigram index of migration calls 0032)."""
    test = " OR ".join(f"UPPER({CALL}.party_ids) LIKE %s ESCAPE '\\'" for _ in patterns)
    return _raw(f"({test})", tuple(p.upper() for p in patterns))


def _party_id(ident: str) -> Q:
    """A whole id or number among the call's party ids."""
    return _party(f"% {like_escape(ident)} %")


def search_sql(q: str) -> SearchSQL:
    """The search ``q`` (already stripped, at least three characters)."""
    own = Q(graph_key=normalise_id(q))
    if GUID.fullmatch(q):
        ident = q.strip("{}")
        return SearchSQL(
            "id",
            "UPPER({t}.identity_id) = UPPER(%s)",
            (ident,),
            own | Q(source_id__iexact=ident) | _party_id(ident),
        )
    digits = re.sub(r"\D", "", q)
    if PHONE.fullmatch(q) and len(digits) >= (2 if q.startswith("+") else 6):
        sql, params = _phone_sql("{t}.identity_id", digits)
        caller, caller_params = _phone_sql(f"{CALL}.source_id", digits)
        # A called number (+E.164 in the party ids) starting or ending so.
        called = _party(f"% +{digits}%", f"%{digits} %")
        return SearchSQL(
            "phone",
            "({t}.identity_kind = 'phone' AND " + sql + ")",
            params,
            own
            | _raw(f"({CALL}.source_id LIKE '+%%' AND {caller})", caller_params)
            | called,
        )
    words = WORD.findall(q)[:MAX_WORDS]
    if not words:
        return SearchSQL("none", "FALSE", (), own)
    sql, params = _words_sql(["{t}.display_name"], words)
    probe, probe_params = _words_sql(["{t}.display_name"], words, probe=True)
    columns = [f"{CALL}.subject", f"{CALL}.source_display", f"{CALL}.party_display"]
    calls, call_params = _words_sql(columns, words)
    row, row_params = _words_sql(columns, words, probe=True)
    own_exact = own
    own_probe = own | _raw(row, row_params)
    own |= _raw(calls, call_params)
    if not q.split()[1:]:  # one word: perhaps a whole id that is not a GUID
        exact = "UPPER({t}.identity_id) = UPPER(%s)"
        sql, params = f"({sql} OR {exact})", (*params, q)
        probe, probe_params = f"({probe} OR {exact})", (*probe_params, q)
        whole = Q(source_id__iexact=q) | _party_id(q)
        own |= whole
        own_probe |= whole
        own_exact |= whole
    return SearchSQL(
        "words",
        sql,
        params,
        own,
        probe,
        probe_params,
        own_probe,
        own_words=row,
        own_words_params=row_params,
        own_exact=own_exact,
    )
