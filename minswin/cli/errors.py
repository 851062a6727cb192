"""The one error a sub-command raises for bad input (its own module, so that the sub-commands
and the table of contents in minswin/cli/__init__.py can both import it at the top)."""


class CliError(Exception):
    """A bad option or an impossible request: printed as one line on stderr, exit code 2."""
