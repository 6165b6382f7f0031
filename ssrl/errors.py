"""The one exception type for bad input: its message names the field and the allowed values."""


class ConfigError(ValueError):
    """A config value or a data folder that ssrl cannot run with; the message is shown as is."""


class ResumeRefused(ConfigError):
    """A run folder holds a run trained with another config: it is left as it was."""


class DiskFull(OSError):
    """A file of the run could not be written for lack of space; the message names the folder and the
    bytes needed, and is shown as is."""
