"""The base of every error that is the user's to fix: shown as a message, never a traceback."""


class UserError(Exception):
    """A request that cannot be carried out; the message says what was wrong and what to do."""
