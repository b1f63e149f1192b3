"""The tool that points the README's Binder badge at the published repository."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinyml_helpers.scripts import binder_badge as bb

ROOT = Path(__file__).resolve().parent.parent


def test_remote_urls_of_both_forms_give_the_github_path():
    assert bb.github_path_from_remote("https://github.com/a-b/c.d_e.git") == "a-b/c.d_e"
    assert bb.github_path_from_remote("git@github.com:a-b/course/") == "a-b/course"


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b.git", "/srv/git/course.git", ""])
def test_a_remote_off_github_is_refused_with_the_way_out(url):
    with pytest.raises(ValueError, match="REPO=owner/repo"):
        bb.github_path_from_remote(url)


@pytest.mark.parametrize("path", ["just-a-name", "https://github.com/a/b", "a/b/c", "-a/b", "a/b c", "OWNER/REPO"])
def test_bad_github_paths_are_refused(path):
    with pytest.raises(ValueError, match="owner/repo|placeholder"):
        bb.validate_github_path(path)


def test_a_bad_ref_is_refused():
    with pytest.raises(ValueError, match="branch, tag or commit"):
        bb.badge_url("a/b", ref="main?x=1")


def test_readme_badge_opens_notebook_00_in_lab():
    badge = bb.read_badge((ROOT / "README.md").read_text())
    assert badge["notebook"] == bb.START_NOTEBOOK and (ROOT / badge["notebook"]).exists()


def test_setting_the_badge_rewrites_only_the_link(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    assert bb.main(["--repo", "someone/tinyml-course", "--ref", "v1.0", "--readme", str(readme)]) == 0
    after = readme.read_text()
    assert bb.read_badge(after) == {"path": "someone/tinyml-course", "ref": "v1.0", "notebook": bb.START_NOTEBOOK}
    assert bb.PLACEHOLDER not in after
    assert after.startswith("# Hands-on TinyML for IoT") and "## Course map" in after
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"], "no temporary file may be left behind"


def test_cli_reports_a_bad_repo_without_touching_the_readme(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    before = readme.read_text()
    with pytest.raises(SystemExit, match="binder-badge: .*owner/repo"):
        bb.main(["--repo", "not a repo", "--readme", str(readme)])
    assert readme.read_text() == before
