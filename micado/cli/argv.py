"""Command-line words, the way getopt reads them."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["glue_values", "split_remote_command"]


def glue_values(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """Join each of ``options`` to the word after it: ``--password -x1`` -> ``--password=-x1``.

    argparse reads a value that starts with a dash (a random password often does) as a
    missing value; getopt, like this, takes the next word whatever it looks like.
    Words after ``--`` are left as they are.

    Args:
        argv: the command-line words.
        options: the options whose value is free text.
    """
    glued: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            glued.append(word)
            glued.extend(words)
            break
        value = next(words, None) if word in options else None
        glued.append(word if value is None else f"{word}={value}")
    return glued


def split_remote_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``(words before, remote command)`` for ``micado master ssh [ID] -- COMMAND...``.

    The words after the first ``--`` that follows ``master ssh`` are the command to run
    on the master, whatever they look like; any other command line is returned whole
    (with ``None``), ``--`` included.
    """
    words = list(argv)
    if "--" not in words:
        return words, None
    head = words[:words.index("--")]
    if "master" in head and "ssh" in head[head.index("master") + 1:]:
        return head, words[len(head) + 1:]
    return words, None
