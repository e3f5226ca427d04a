"""The one exception type that reaches the user as a short message instead of a traceback."""


class LitlabError(Exception):
    """A problem the user can fix: the message says what is wrong and how to fix it."""
