"""The one error a configuration that cannot run raises; entry points print its line and exit."""


class IncompatibleConfig(ValueError):
    """A configuration that cannot run; entry points print its one line and exit."""
