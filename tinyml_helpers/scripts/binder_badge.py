"""Point the README's "Launch on Binder" badge at the repository where the course is published.

Usage (once, by whoever publishes the course on GitHub)::

    make binder-badge                       # reads the GitHub path from `git remote get-url origin`
    make binder-badge REPO=someone/tinyml   # or name it yourself (optionally REF=a-branch)

Binder builds a public GitHub repository from its ``binder/`` folder; the badge link is
``https://mybinder.org/v2/gh/<owner>/<repo>/<ref>?urlpath=lab/tree/<notebook>`` (the URL scheme
is documented at https://mybinder.readthedocs.io). Until the course has a public home the
README carries ``OWNER/REPO`` as a placeholder, which this script replaces in place. Written
here because no packaged tool rewrites a README badge; it is a few lines of string handling.
"""
from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

from tinyml_helpers.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
START_NOTEBOOK = "notebooks/00_why_tinyml.ipynb"
PLACEHOLDER = "OWNER/REPO"
_BADGE_LINK = re.compile(r"\(https://mybinder\.org/v2/gh/(?P<path>[^/)\s]+/[^/)\s]+)/(?P<ref>[^?)\s]+)"
                         r"\?urlpath=lab/tree/(?P<notebook>[^)\s]+)\)")
# GitHub owner: letters, digits, single hyphens; repository: letters, digits, '.', '_', '-'.
_GITHUB_PATH = re.compile(r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})/"
                          r"(?P<repo>[A-Za-z0-9._-]{1,100})$")
_REMOTE = re.compile(r"github\.com[:/](?P<owner>[^/\s]+)/(?P<repo>[^/\s]+?)(?:\.git)?/?$")


def validate_github_path(path: str) -> str:
    """Return ``owner/repo`` unchanged if it looks like a GitHub repository path.

    Example:
        >>> validate_github_path("micromind-toolkit/micromind")
        'micromind-toolkit/micromind'
    """
    if not isinstance(path, str) or not _GITHUB_PATH.match(path.strip()):
        raise ValueError(f"{path!r} is not a GitHub repository path; write it as owner/repo, "
                         "e.g. 'micromind-toolkit/micromind' (no https://, no .git)")
    if path.strip() == PLACEHOLDER:
        raise ValueError("OWNER/REPO is the placeholder; pass the real GitHub path of the course")
    return path.strip()


def github_path_from_remote(url: str) -> str:
    """Extract ``owner/repo`` from a GitHub remote URL (https or ssh form).

    Example:
        >>> github_path_from_remote("git@github.com:someone/tinyml-course.git")
        'someone/tinyml-course'
        >>> github_path_from_remote("https://github.com/someone/tinyml-course")
        'someone/tinyml-course'
    """
    match = _REMOTE.search(url.strip())
    if not match:
        raise ValueError(f"the remote {url!r} is not on github.com; Binder's 'gh' provider needs a "
                         "public GitHub repository: pass REPO=owner/repo explicitly")
    return validate_github_path(f"{match['owner']}/{match['repo']}")


def badge_url(github_path: str, ref: str = "main", notebook: str = START_NOTEBOOK) -> str:
    """The mybinder.org link that builds ``github_path`` at ``ref`` and opens ``notebook`` in JupyterLab.

    Example:
        >>> badge_url("someone/tinyml-course")
        'https://mybinder.org/v2/gh/someone/tinyml-course/main?urlpath=lab/tree/notebooks/00_why_tinyml.ipynb'
    """
    github_path = validate_github_path(github_path)
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", ref or "") or ".." in ref:
        raise ValueError(f"{ref!r} is not a branch, tag or commit name Binder can use")
    return f"https://mybinder.org/v2/gh/{github_path}/{ref}?urlpath=lab/tree/{notebook}"


def read_badge(readme_text: str) -> dict[str, str]:
    """Find the Binder badge link in README text: its GitHub path, ref and start notebook.

    Example:
        >>> read_badge("[![b](x)](https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/n.ipynb)")
        {'path': 'a/b', 'ref': 'main', 'notebook': 'n.ipynb'}
    """
    match = _BADGE_LINK.search(readme_text)
    if not match:
        raise ValueError("no mybinder.org/v2/gh/... badge link found in the README")
    return match.groupdict()


def set_badge(readme: Path, github_path: str, ref: str = "main") -> str:
    """Rewrite the README's badge link to ``github_path`` at ``ref``; return the new link.

    Example:
        >>> set_badge(Path("README.md"), "someone/tinyml-course")  # doctest: +SKIP
        'https://mybinder.org/v2/gh/someone/tinyml-course/main?urlpath=lab/tree/notebooks/00_why_tinyml.ipynb'
    """
    text = Path(readme).read_text(encoding="utf-8")
    current = read_badge(text)
    url = badge_url(github_path, ref, current["notebook"])
    new_text = _BADGE_LINK.sub(f"({url})", text, count=1)
    # The prose next to the badge tells readers to replace the placeholder; drop that once it is real.
    new_text = new_text.replace(f" (it uses `binder/`; replace `{PLACEHOLDER}` with this repository's\n"
                                "GitHub path when you publish it).", " (it uses `binder/`).")
    atomic_write_text(readme, new_text)
    return url


def _origin_url() -> str:
    try:
        out = subprocess.run(["git", "remote", "get-url", "origin"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit("this clone has no 'origin' remote to read the GitHub path from; "
                         "run `make binder-badge REPO=owner/repo`") from exc
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="", help="GitHub owner/repo (default: from the origin remote)")
    parser.add_argument("--ref", default="main", help="branch, tag or commit Binder builds (default: main)")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    try:
        github_path = args.repo or github_path_from_remote(_origin_url())
        url = set_badge(args.readme, github_path, args.ref)
    except ValueError as exc:
        raise SystemExit(f"binder-badge: {exc}") from exc
    print(f"README badge now launches {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
