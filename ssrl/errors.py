"""The one exception type for bad input: its message names the field and the allowed values."""


class ConfigError(ValueError):
    """A config value or a data folder that ssrl cannot run with; the message is shown as is."""


class FolderRefused(ConfigError):
    """A job that may not run in its run folder: the folder is left as it was."""


class ResumeRefused(FolderRefused):
    """A run folder holds a run trained with another config: it is left as it was."""


class RunFolderBusy(FolderRefused):
    """Another process runs a job in the run folder (ssrl.run.lock): it is left as it was."""
