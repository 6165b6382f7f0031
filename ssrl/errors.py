"""The one exception type for bad input: its message names the field and the allowed values."""

import re


class ConfigError(ValueError):
    """A config value or a data folder that ssrl cannot run with; the message is shown as is."""


class FolderRefused(ConfigError):
    """A job that may not run in its run folder: the folder is left as it was."""


class ResumeRefused(FolderRefused):
    """A run folder holds a run trained with another config: it is left as it was."""


class DiskFull(OSError):
    """A file of the run could not be written for lack of space; the message names the folder and the
    bytes needed, and is shown as is."""


def message_of(exc: BaseException) -> str:
    """The message ``exc`` was raised with. An exception raised in a DataLoader worker is raised again in
    the main process (torch's ExceptionWrapper) with the worker's whole traceback as its message, "Caught
    <type> in DataLoader worker process <n>. Original Traceback ... <module>.<type>: <message>": of such
    an exception, the original message."""
    text = str(exc)
    caught = re.match(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback", text)
    if caught is None:
        return text
    lines = list(re.finditer(rf"^(?:[\w.]+\.)?{caught.group(1)}: ", text, flags=re.MULTILINE))
    return text[lines[-1].end() :].strip() if lines else text


class RunFolderBusy(FolderRefused):
    """Another process runs a job in the run folder (ssrl.run.lock): it is left as it was."""
