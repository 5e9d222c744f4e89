"""The manual (docs/, built by mkdocs.yml) and the README, the landing page that links into it: the site builds with
--strict, every page is in the navigation, every relative link of the README resolves, every hf-autoresearch command
shown in a bash block parses, and the files the pages name exist."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # a dependency of mkdocs
from markdown.extensions.toc import slugify

from hf_autoresearch import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), not images
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def mkdocs_build(project: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def nav_pages(nav) -> list[str]:
    """The files a mkdocs `nav` names, however deeply its sections nest."""
    if isinstance(nav, str):
        return [] if "://" in nav else [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def anchors(markdown_file: Path) -> set[str]:
    """The ids mkdocs gives the headings of a page (python-markdown's toc slugs, outside code blocks)."""
    text = FENCE.sub("", markdown_file.read_text())
    return {slugify(re.sub(r"[`*_]", "", title), "-") for title in HEADING.findall(text)}


def test_the_manual_builds_strict(tmp_path):
    site = tmp_path / "site"
    result = mkdocs_build(ROOT, site)
    assert result.returncode == 0, result.stdout + result.stderr
    for page in PAGES:  # index.md -> index.html, keep-rule.md -> keep-rule/index.html
        stem = page.removesuffix(".md")
        built = site / ("index.html" if stem == "index" else f"{stem}/index.html")
        assert built.is_file(), f"{page} was not built"


def test_strict_build_fails_on_a_broken_anchor(tmp_path):
    """The check above can fail: the same manual with one link to a heading that does not exist does not build."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "index.md").open("a") as f:
        f.write("\nSee [nowhere](keep-rule.md#no-such-heading).\n")
    result = mkdocs_build(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-heading" in result.stdout + result.stderr


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = nav_pages(config["nav"])
    assert len(PAGES) >= 10, PAGES
    assert sorted(set(nav)) == PAGES, f"missing from nav: {set(PAGES) - set(nav)}; not a page: {set(nav) - set(PAGES)}"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_readme_relative_links_resolve():
    targets = [t for t in LINK.findall(README.read_text()) if not re.match(r"[a-z]+:", t)]
    assert len(targets) >= 10, targets  # the landing page links into the manual and the recipes
    broken = []
    for target in targets:
        path, _, anchor = target.partition("#")
        file = (README.parent / path) if path else README
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {path or 'README.md'}")
    assert not broken, broken
    linked = {t.partition("#")[0] for t in targets}
    assert {f"docs/{page}" for page in PAGES} <= linked, "the README links every page of the manual"


def shown_commands(markdown_file: Path) -> list[str]:
    """The `hf-autoresearch ...` command lines of a file's bash blocks, continuation lines joined."""
    commands = []
    for lang, body in FENCE.findall(markdown_file.read_text()):
        if lang != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["hf-autoresearch"]:
                    commands.append(shlex.join(words))
    return commands


@pytest.mark.parametrize("markdown_file", [README, *(DOCS / page for page in PAGES)], ids=lambda p: p.name)
def test_commands_shown_parse(markdown_file):
    """Every hf-autoresearch command in a bash block is one the CLI accepts as written (parsed, not run)."""
    parser = cli._parser()
    for command in shown_commands(markdown_file):
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as err:
            pytest.fail(f"{markdown_file.name}: `{command}` is refused by the CLI ({err})")


def test_the_readme_shows_real_commands():
    commands = shown_commands(README)
    assert any(c.startswith("hf-autoresearch run recipes/intent-categorization") for c in commands), commands
    assert "python -m pytest -q" in README.read_text()  # the test command .ci/run runs


PATH_SPAN = re.compile(r"`((?:hf_autoresearch|tests|scripts|recipes|docs)/[\w./-]*)`")
PLACEHOLDERS = ("NAME", "NNNN", "TAG")


def named_paths(prefixes: tuple[str, ...]) -> set[str]:
    text = "\n".join(f.read_text() for f in [README, *(DOCS / page for page in PAGES)])
    return {
        path.rstrip("/")
        for path in PATH_SPAN.findall(text)
        if path.startswith(prefixes) and not any(word in path for word in PLACEHOLDERS)
    }


def test_files_the_manual_names_exist():
    paths = named_paths(("tests/", "scripts/", "recipes/", "docs/"))
    assert len(paths) >= 10, paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"named in README.md or docs/ but not in the repository: {missing}"


def architecture_modules() -> set[str]:
    """The module files docs/architecture.md lists in its tables, as paths under hf_autoresearch/."""
    folder, modules = None, set()
    for line in (DOCS / "architecture.md").read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            folder = "" if heading == "Top level" else heading if re.fullmatch(r"\w+/", heading) else None
        elif folder is not None and (row := re.match(r"\| `(\w+\.py)` \|", line)):
            modules.add(f"hf_autoresearch/{folder}{row.group(1)}")
    return modules


@pytest.mark.skipif(
    not (ROOT / "hf_autoresearch" / "driver").is_dir(),
    reason="the manual describes the package as reorganised into driver/, executors/, reporting/ (issue 18)",
)
def test_package_paths_the_manual_names_exist():
    paths = named_paths(("hf_autoresearch/",)) | architecture_modules()
    assert len(paths) >= 30, paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"named in README.md or docs/ but not in the package: {missing}"
