"""Errors a user can act on. Each message says what is wrong and how to fix it."""


class InputError(ValueError):
    """The data given cannot be used as it is (format, values, shape, keys)."""
