"""The Airflow task and the Prefect flow of docs/orchestrators.md, run as written against a sandbox (the two
orchestrators' decorators are stood in for: they only register the function)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from ordersync.errors import SyncError
from tests.support import running

DOC = Path(__file__).parents[1] / "docs" / "orchestrators.md"


def python_blocks() -> dict[str, str]:
    """The python code blocks of the doc, by the heading above them."""
    found: dict[str, str] = {}
    heading = ""
    for i, part in enumerate(DOC.read_text().split("```")):
        if i % 2 == 0:
            headings = [line for line in part.splitlines() if line.startswith("## ")]
            heading = headings[-1][3:] if headings else heading
        elif part.startswith("python\n"):
            found[heading] = part.removeprefix("python\n")
    return found


@pytest.fixture
def orchestrators(monkeypatch: pytest.MonkeyPatch) -> None:
    def decorator(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args and callable(args[0]) else (lambda fn: fn)

    airflow, decorators, prefect = (types.ModuleType(n) for n in ("airflow", "airflow.decorators", "prefect"))
    decorators.task = decorator  # type: ignore[attr-defined]
    prefect.flow = decorator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.decorators", decorators)
    monkeypatch.setitem(sys.modules, "prefect", prefect)


def test_the_airflow_task_and_the_prefect_flow_sync_and_fail_as_documented(
        orchestrators: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks()
    assert set(blocks) == {"Airflow", "Prefect", "Your own code"}
    compile(blocks["Your own code"], "own", "exec")  # it would call the vendor's real API
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "ordersync.toml"
    with running("frontcore", orders=40, api_key="doc-key") as fc:
        config.write_text(f'[destination]\nurl = "sqlite:///{tmp_path / "orders.db"}"\n\n[sources.oslo-courses]\n'
                          f'type = "frontcore"\napi_key = "doc-key"\nbase_url = "{fc.url}/v2"\n'
                          f'requests_per_second = 1000\n')
        airflow: dict[str, Any] = {}
        exec(blocks["Airflow"].replace("/opt/ordersync/ordersync.toml", str(config)), airflow)
        assert airflow["sync_oslo_courses"]() == 40 + 10  # orders and customers
        prefect: dict[str, Any] = {}
        exec(blocks["Prefect"], prefect)
        assert prefect["sync_orders"]() is None
        config.write_text(config.read_text().replace('"doc-key"', '"not-the-key"'))
        with pytest.raises(SyncError, match="oslo-courses/orders: .*Wrong API Key"):
            prefect["sync_orders"](["oslo-courses"])


# --- links: every relative link of the README and of docs/ resolves to a file of the repository ----------------------

ROOT = Path(__file__).parents[1]
README_MAX_LINES = 250  # a front page for a new user (about 200 lines); the reference is in docs/
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
HTML_TARGET = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.I)
HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:id|name)=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.M)


def doc_files() -> list[Path]:
    """The README and every markdown page under docs/ (the generated settings pages included)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """The text as rendered prose: fenced code blocks and code spans hold no links or headings."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1", r"\2", text)  # emphasis markers go, their text stays
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file: its headings' slugs (repeats numbered as GitHub does) and HTML ids."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for _, heading in HEADING.findall(text):
        slug = github_slug(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + HTML_TARGET.findall(text)


def broken_link(source: Path, target: str) -> str | None:
    """Why ``target``, as written in ``source``, does not resolve to a file of the repository (None: it does)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...: not a file of the repository
        return None
    where, _, anchor = target.partition("#")
    resolved = (source.parent / where).resolve() if where else source
    if ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve():
        return "points outside the repository"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading with the anchor #{anchor}"
    return None


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    problems = [f"{source.relative_to(ROOT)}: ({target}): {why}"
                for source in doc_files() for target in links(source)
                if (why := broken_link(source, target))]
    assert not problems, "\n".join(problems)


def test_the_docs_cite_no_file_outside_the_repository() -> None:
    """The vendors' material and the design notes the project was built from are not in the repository: what the
    code relies on is written in the docs, in their own words, and no page sends a reader to those files."""
    outside = re.compile(r"DESIGN\.md|NOTES\.md|api-docs")
    problems = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in doc_files()
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if outside.search(line)]
    assert not problems, "\n".join(problems)


def test_the_paths_the_docs_name_exist() -> None:
    """A path of the repository named in code (`src/...`, `tests/...`, `benchmarks/...`, `docs/...`) exists: a page
    that names a moved or deleted module fails here."""
    named = re.compile(r"`((?:src|tests|benchmarks|docs)/[^`\s<>{}*]+?)(?:::[^`]*)?`")
    problems = [f"{path.relative_to(ROOT)}: {name}" for path in doc_files()
                for name in named.findall(path.read_text(encoding="utf-8")) if not (ROOT / name).exists()]
    assert not problems, "\n".join(problems)


def test_the_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move reference material to docs/"


@pytest.mark.parametrize(("heading", "slug"), [
    ("Destinations: SQLite, PostgreSQL, DuckDB", "destinations-sqlite-postgresql-duckdb"),
    ("The sandbox (`ordersync serve frontcore`)", "the-sandbox-ordersync-serve-frontcore"),
    ("e-guma (REST API v1, gift vouchers, Switzerland)", "e-guma-rest-api-v1-gift-vouchers-switzerland"),
    ("Nothing lost: the cursor rule", "nothing-lost-the-cursor-rule"),
    ("A shop that keeps selling: `--live RATE`", "a-shop-that-keeps-selling---live-rate"),
    ("Dagster: dozens to hundreds of vendor **accounts**", "dagster-dozens-to-hundreds-of-vendor-accounts"),
    ("The [state](x.md) of a_stream", "the-state-of-a_stream"),
])
def test_slugs_follow_githubs_rule(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug
