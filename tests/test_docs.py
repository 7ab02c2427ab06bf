"""The repository's text stays a product's (issue 37): user docs in docs/, the training campaign's
record in campaign/, every path a doc quotes exists, every benchmark script, config and stage
record is indexed (issue 48)."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROSE = sorted([REPO / "README.md", REPO / "benchmarks" / "README.md", REPO / "configs" / "README.md",
                *(REPO / "docs").glob("*.md"), *(REPO / "campaign").glob("*.md")])
# Docs that describe the repository as it is now. The campaign's dated records (LOG.md,
# stageNN.md, model-cards.md) name files as they were on their date, some since removed.
CURRENT = [p for p in PROSE if p.parent.name != "campaign" or p.name == "README.md"]
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
    if doc != "benchmarks/README.md":  # its templates (stageK-...) are checked by the test below
        for quoted in re.findall(r"(?<![\w/.-])((?:docs|campaign/results|benchmarks/results)/[\w.-]+\.json)", text):
            if not (REPO / quoted).exists():
                missing.append(quoted)
    assert not missing, f"{doc} points to files that do not exist: {sorted(set(missing))}"


# A repository path in prose: docs/..., campaign/..., benchmarks/..., configs/..., scripts/...,
# src/..., tests/..., with {a,b} alternatives and * globs; not inside a longer path, a URL or a
# `git show COMMIT:path`.
NAMED_PATH = re.compile(r"(?<![\w/.:$-])((?:docs|campaign|benchmarks|configs|scripts|src|tests)/"
                        r"(?:[\w.*/-]|\{[\w.,-]+\})*(?:[\w*]|\{[\w.,-]+\}))")
# A top-level or same-folder record named bare: README.md, LOG.md (DESIGN.md was quoted, never written).
NAMED_RECORD = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_-]*\.md)\b")
# Placeholders in commands that name a family of files (at least one of which must exist).
TEMPLATES = {"stageK": "stage*", "stageNN": "stage*", "NAME": "*", "BRANCH": "*"}


def _alternatives(path: str) -> list[str]:
    m = re.search(r"\{([^{}]+)\}", path)
    if not m:
        return [path]
    return [alt for part in m.group(1).split(",")
            for alt in _alternatives(path[:m.start()] + part + path[m.end():])]


def _resolves(path: str) -> bool:
    for alt in _alternatives(path):
        for placeholder, pattern in TEMPLATES.items():
            alt = alt.replace(placeholder, pattern)
        if "*" in alt:
            ok = any(REPO.glob(alt))
        else:
            p = REPO / alt
            # `--out docs/prenet_side_by_side` names the prefix of the files a script writes
            ok = p.exists() or (not p.suffix and any(p.parent.glob(p.name + ".*")))
        if not ok:
            return False
    return True


@pytest.mark.parametrize("doc", [rel(p) for p in CURRENT])
def test_every_repository_file_a_doc_names_exists(doc):
    """Issue 48: a doc (or benchmarks/README.md's index of outputs) that names a file in the
    repository names one that is there: docs/test-sets.json was promised and never written."""
    text = (REPO / doc).read_text()
    missing = [f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(1)}"
               for m in NAMED_PATH.finditer(text) if not _resolves(m.group(1))]
    missing += [f"{doc}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(1)}"
                for m in NAMED_RECORD.finditer(text)
                if not ((REPO / m.group(1)).exists() or ((REPO / doc).parent / m.group(1)).exists())]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def test_the_path_check_can_fail():
    assert not _resolves("docs/test-sets.json")
    assert not _resolves("campaign/results/stage{15,99}-validation.json")
    assert not _resolves("campaign/results/stageK-no-such-output.json")
    assert _resolves("campaign/results/stage{16,17}-validation.json")
    assert _resolves("campaign/results/stageK-heavy-rain.json")
    assert _resolves("docs/prenet_side_by_side")
    found = [m.group(1) for m in NAMED_PATH.finditer(
        "see docs/a.md, `git show 1a2b:campaign/x.safetensors` and ../docs/b.md or runs/docs/c.json.")]
    assert found == ["docs/a.md"]
    assert [m.group(1) for m in NAMED_RECORD.finditer("as DESIGN.md s.4 and campaign/LOG.md say")] == ["DESIGN.md"]


def test_every_config_is_in_the_configs_index():
    index = (REPO / "configs" / "README.md").read_text()
    files = [p for p in sorted((REPO / "configs").rglob("*")) if p.suffix in (".yaml", ".sh")]
    missing = [p.relative_to(REPO / "configs").as_posix() for p in files
               if f"`{p.relative_to(REPO / 'configs').as_posix()}`" not in index]
    assert not missing, f"configs/README.md does not list: {missing}"


def test_every_stage_record_is_in_the_campaign_index():
    index = (REPO / "campaign" / "README.md").read_text()
    missing = [p.name for p in sorted((REPO / "campaign").glob("stage*.md")) if f"]({p.name})" not in index]
    assert not missing, f"campaign/README.md does not link: {missing}"
