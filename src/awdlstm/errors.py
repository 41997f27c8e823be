"""The one exception type users see: a clear, one-line message, no traceback."""


class AwdlstmError(Exception):
    """A problem with the user's input (a file, an option, a value) and what would be valid.

    The CLI prints ``awdlstm: error: <message>`` and exits with status 2.
    """
