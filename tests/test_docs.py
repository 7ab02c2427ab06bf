"""The repository's text stays a product's (issue 37): user docs in docs/, the training campaign's
record in campaign/, every path a doc quotes exists, every benchmark script is indexed."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROSE = sorted([REPO / "README.md", REPO / "benchmarks" / "README.md", *(REPO / "docs").glob("*.md"),
                *(REPO / "campaign").glob("*.md")])
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def rel(p: Path) -> str:
    return p.relative_to(REPO).as_posix()


def test_no_session_in_the_repository_text():
    """Readers can follow stages of the campaign, dates, commits and machines, not "session N"."""
    word = re.compile(r"\bsessions?\b", re.IGNORECASE)
    hits = [f"{rel(f)}:{i}: {line.strip()[:80]}" for f in PROSE + CONFIGS
            for i, line in enumerate(f.read_text().splitlines(), 1) if word.search(line)]
    assert not hits, "\n".join(hits)


def test_docs_hold_at_most_ten_json_files_each_quoted_by_a_doc():
    found = sorted((REPO / "docs").rglob("*.json"))
    assert len(found) <= 10, f"{len(found)} JSON files under docs/ (at most 10): {[rel(p) for p in found]}"
    text = "\n".join(f.read_text() for f in PROSE)
    unquoted = [rel(p) for p in found if rel(p) not in text]
    assert not unquoted, f"JSON files under docs/ that no doc quotes: {unquoted}"


def test_model_card_is_short():
    lines = len((REPO / "docs" / "model-card.md").read_text().splitlines())
    assert lines <= 200, f"docs/model-card.md has {lines} lines (at most 200; history goes to campaign/)"


def test_every_benchmark_script_is_in_the_index():
    index = (REPO / "benchmarks" / "README.md").read_text()
    missing = [p.name for p in sorted((REPO / "benchmarks").glob("*.py")) if f"`{p.name}`" not in index]
    assert not missing, f"benchmarks/README.md does not list: {missing}"


@pytest.mark.parametrize("doc", [rel(p) for p in PROSE])
def test_links_and_quoted_results_exist(doc):
    """Markdown links resolve, and every results file a doc quotes is where it says (a moved file
    takes its quotes with it)."""
    path = REPO / doc
    text = path.read_text()
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if not target.startswith(("http://", "https://", "mailto:")) and not (path.parent / target).exists():
            missing.append(target)
    if doc != "benchmarks/README.md":  # the index names where each script *would* write
        for quoted in re.findall(r"(?<![\w/.-])((?:docs|campaign/results|benchmarks/results)/[\w.-]+\.json)", text):
            if not (REPO / quoted).exists():
                missing.append(quoted)
    assert not missing, f"{doc} points to files that do not exist: {sorted(set(missing))}"
