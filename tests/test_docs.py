"""README.md and docs/*.md as a user reads them: every `ssrl-train ...` command they show (in code blocks
and inline code) composes with Hydra and passes ssrl's checks, and every relative link resolves, to a file
and to a heading's anchor. Nothing trains; whatever the pages say, the test finds it by the same rules."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from ssrl.run.cli import command_line_overrides, variants
from ssrl.run.loggers import check_loggers
from ssrl.train import CONFIG_DIR
from ssrl.validate import validate

ROOT = Path(CONFIG_DIR).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target), ![alt](target)
LINK_ELSEWHERE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)|(?:src|href)=\"([^\"]+)\"", re.MULTILINE)  # [ref]: target, HTML
SHELL_SEPARATORS = {"&&", "||", ";", "|"}
PLACEHOLDER = re.compile(r"<([^<>]+)>")


def joined(lines: list[str]) -> list[str]:
    """Shell lines with their backslash continuations joined."""
    out, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            out.append(pending + line)
            pending = ""
    return out + ([pending] if pending else [])


def split_page(text: str) -> tuple[list[list[str]], str]:
    """(the fenced code blocks, each as its lines, continuations joined; the prose, code blocks blanked)."""
    blocks, prose, block = [], [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                blocks.append(joined(block))
                block = None
            prose.append("")
        elif block is not None:
            block.append(line)
            prose.append("")
        else:
            prose.append(line)
    return blocks, "\n".join(prose)


def commands_in(snippet: str) -> list[list[str]]:
    """The argument lists of every `ssrl-train` command in a shell snippet (after a `$` prompt, environment
    assignments, `&&` and the like; comments dropped)."""
    if not re.search(r"(^|[\s$&;|])ssrl-train(\s|$)", snippet):
        return []
    tokens = shlex.split(snippet, comments=True)
    found, segment = [], []
    for token in [*tokens, ";"]:
        if token not in SHELL_SEPARATORS:
            segment.append(token)
            continue
        words = [w for w in segment if w != "$"]
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):  # OMP_NUM_THREADS=1
            words.pop(0)
        if words and words[0] == "ssrl-train":
            found.append(words[1:])
        segment = []
    return found


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, arguments) of every ssrl-train command the pages show, but those shown failing (a command
    line followed by its `ssrl-train: error:` line)."""
    found = []
    for page in PAGES:
        blocks, prose = split_page(page.read_text())
        for block in blocks:
            for line, after in zip(block, [*block[1:], ""], strict=True):
                if not after.startswith("ssrl-train: error:"):
                    found += [(f"{page.name}: {line.strip()}", args) for args in commands_in(line)]
        for span in INLINE.findall(prose):
            span = " ".join(span.split())
            found += [(f"{page.name}: `{span}`", args) for args in commands_in(span)]
    return found


def group_options(key: str) -> list[str]:
    folder = Path(CONFIG_DIR) / key.lstrip("+~")
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def concrete(overrides: list[str]) -> list[str]:
    """The overrides a template stands for: `...` dropped, `key=<a|b>` as the sweep `key=a,b`, `group=<x>`
    as the sweep over the group's options; an override with any other placeholder left out."""
    line = []
    for override in overrides:
        key, _, value = override.partition("=")
        hole = PLACEHOLDER.fullmatch(value)
        if hole is None and override != "...":
            line.append(override)
        elif hole is not None and ("|" in hole.group(1) or group_options(key)):
            choices = hole.group(1).split("|") if "|" in hole.group(1) else group_options(key)
            line.append(f"{key}={','.join(choices)}")
    return line


COMMANDS = list({tuple(args): (where, args) for where, args in reversed(documented_commands())}.values())[::-1]


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 5, COMMANDS  # the extraction itself works (README's first command at least)
    assert any(args == [] for _, args in COMMANDS)


@pytest.mark.parametrize("where,args", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_documented_command_composes(where, args, monkeypatch):
    monkeypatch.setattr("ssrl.validate.check_available", lambda data: None)  # data sets need not be here
    overrides, _ = command_line_overrides(args)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        line = concrete(overrides)
        for variant in variants(line) if line else [[]]:  # each value of a sweep once
            cfg = compose("train", overrides=variant, return_hydra_config=True)
            with open_dict(cfg):
                del cfg["hydra"]
            validate(cfg)
            check_loggers(cfg.logger)


# ------------------------------------------------------------------------------------------------ links
def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: the text lowercased, punctuation but - and _ dropped, spaces
    as -, a repeated one suffixed -1, -2, ..."""
    _, prose = split_page(markdown)
    found, counts = set(), {}
    for line in prose.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            counts[slug] = counts.get(slug, 0) + 1
            found.add(slug if counts[slug] == 1 else f"{slug}-{counts[slug] - 1}")
    return found


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for page in PAGES:
        _, prose = split_page(page.read_text())
        prose = INLINE.sub("", prose)
        targets = LINK.findall(prose) + [a or b for a, b in LINK_ELSEWHERE.findall(prose)]
        links += [(page, target) for target in targets if not re.match(r"^[a-z]+:", target)]
    return links


def test_every_relative_link_resolves():
    links = relative_links()
    assert links
    broken = []
    for page, target in links:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{page.name}: {target} (no heading #{anchor} in {file.name})")
    assert not broken, "\n".join(broken)
