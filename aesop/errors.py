"""The one exception type that entry points turn into a one-line message."""


class AesopError(Exception):
    """A problem with the user's options, files or data, stated in one line (a list, such as the missing
    files, one line each after a first line that says what it lists).

    ``aesop/train.py`` and ``aesop/test.py`` print it as ``aesop: error: <message>`` and exit
    with status 2. Set ``AESOP_TRACEBACK=1`` to get the full traceback instead.
    """


class OptionValueError(AesopError, ValueError):
    """A bad value for a component's option (a ``ValueError`` naming the allowed values)."""
