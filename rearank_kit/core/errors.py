"""The kit's exceptions (errors a user can fix, printed without a traceback by the CLI) and its one warning."""


class KitError(Exception):
    """Bad input, missing data or a missing optional dependency.

    The message names the file, line or field at fault and, where it helps, what to do instead.
    The CLI prints it on stderr and exits with status 2 (a traceback only with ``--debug``).
    """


class DataError(KitError, ValueError):
    """A malformed input file; the message carries ``path:line``."""


class MissingDependency(KitError, ImportError):
    """An optional extra (vllm, pyserini...) is not installed."""


class TemplateMismatchWarning(UserWarning):
    """A model is run with another prompt template than the one it was trained with or meant for."""
