"""Stored text on its way to a terminal or a plain log line: control and other invisible
characters (newlines, ESC sequences, bidi overrides) escaped, so a name can never forge a line
or move the cursor; and the check that keeps such characters out of names in the first place."""


def escape_unprintable(text: str) -> str:
    """`text` with every character that does not print (str.isprintable: control, format and
    separator characters but the space) written as its Python escape: `\\n`, `\\x1b`, `\\u202e`."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


def unprintable_characters(text: str) -> list[str]:
    """The characters of `text` that do not print, escaped, in order of first appearance."""
    return list(dict.fromkeys(escape_unprintable(char) for char in text if not char.isprintable()))


def printable_error(text: str) -> str | None:
    """The error message for a name holding characters that do not print (None: it has none)."""
    found = unprintable_characters(text)
    if not found:
        return None
    return f"Control or invisible characters are not allowed ({', '.join(found)})."
