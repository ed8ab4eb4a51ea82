"""Indexes for the history's search by the shape of what was typed, on PostgreSQL.

The search (``dashboard.history_query``) no longer runs five substring scans; it
reads the query's shape and uses one kind of index:

- words (a name, a surname, a subject): every word and each of its prefixes of
  three letters or more, as exact lexemes of a text-search vector
  (``history_word_prefixes``, GIN), of participants' names and of the call's
  subject and caller name: a search's words are then plain lexemes, which GIN
  intersects quickly (a prefix query, ``'yam':*``, gathers every lexeme it
  covers into a bitmap first: ten times slower for two words);
- a phone number (digits, spaces, ``+ ( ) - .``): the number's digits as a
  prefix of, or the end of, the digits of phone participants and phone callers
  (B-trees in ``text_pattern_ops``, the second on the reversed digits);
- a whole id (AAD object id, caller id, Graph call id): an equality on the
  ``upper()`` B-trees of migration 0018 and on ``graph_key``.

The expressions must stay identical to those the search writes (``_DIGITS``,
``PREFIXES`` in ``dashboard.history_search``), or PostgreSQL will not use the
indexes.
The trigram indexes of migration 0011 on these columns served the old substring
search only; they go (each one cost every participant insert a GIN update).

Building them over an existing history takes a while: on the 1,000,000-call
bench (5,000,000 participants) of a busy two-core machine, 6 minutes for the
people's word index and 1.5 for the calls'.

SQLite has no GIN, no ``regexp_replace`` and no ``reverse``: there the search runs
the same shapes as LIKE scans, fine at its sizes, and this migration does nothing.
"""

from django.db import migrations

DIGITS = "regexp_replace({column}, '[^0-9]', '', 'g')"
# Every word of the text and each of its prefixes of 3+ letters (a shorter word
# whole), as a tsvector of exact lexemes.
FUNCTION = """
CREATE OR REPLACE FUNCTION history_word_prefixes(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_to_tsvector(array_agg(DISTINCT left(w, n))), ''::tsvector)
  FROM unnest(tsvector_to_array(to_tsvector('simple'::regconfig, body))) AS w,
       generate_series(least(3, length(w)), length(w)) AS n
$$
"""
INDEXES = {
    "participant_name_words_idx": (
        "calls_participant USING gin (history_word_prefixes(display_name))"
    ),
    "call_words_idx": (
        "calls_call USING gin (history_word_prefixes(subject || ' ' || source_display))"
    ),
    "participant_phone_prefix_idx": (
        f"calls_participant ({DIGITS.format(column='identity_id')} "
        "text_pattern_ops) WHERE identity_kind = 'phone'"
    ),
    "participant_phone_suffix_idx": (
        f"calls_participant (reverse({DIGITS.format(column='identity_id')}) "
        "text_pattern_ops) WHERE identity_kind = 'phone'"
    ),
    "call_caller_phone_prefix_idx": (
        f"calls_call ({DIGITS.format(column='source_id')} text_pattern_ops) "
        "WHERE source_id LIKE '+%'"
    ),
    "call_caller_phone_suffix_idx": (
        f"calls_call (reverse({DIGITS.format(column='source_id')}) "
        "text_pattern_ops) WHERE source_id LIKE '+%'"
    ),
}
TRIGRAMS = {
    "participant_name_trgm_idx": ("calls_participant", "display_name"),
    "participant_identity_trgm_idx": ("calls_participant", "identity_id"),
    "call_subject_trgm_idx": ("calls_call", "subject"),
    "call_source_display_trgm_idx": ("calls_call", "source_display"),
    "call_source_id_trgm_idx": ("calls_call", "source_id"),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, None)
    for name, definition in INDEXES.items():
        # No parameters: the definitions hold literal % signs.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {definition}", None
        )
    for name in TRIGRAMS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    schema_editor.execute("DROP FUNCTION IF EXISTS history_word_prefixes(text)")
    for name, (table, column) in TRIGRAMS.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin (upper({column}) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("calls", "0019_call_wait_limit")]

    operations = [migrations.RunPython(create, drop)]
