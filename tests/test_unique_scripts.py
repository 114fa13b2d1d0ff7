"""book/_ext/unique_scripts.py: the repeated inline configuration scripts of sphinx-thebe and
sphinx-togglebutton (same body, file name None once and "" once) are kept once, first copy first."""
import importlib.util
from pathlib import Path

from sphinx.builders.html._assets import _JavaScript


def _ext():
    path = Path(__file__).resolve().parents[1] / "book" / "_ext" / "unique_scripts.py"
    spec = importlib.util.spec_from_file_location("unique_scripts", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_repeated_inline_script_is_dropped_and_order_kept():
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("_static/doctools.js", priority=200),
               _JavaScript(None, body=thebe),
               _JavaScript("_static/sphinx-thebe.js", **{"async": "async"}),
               _JavaScript("", body=thebe),          # the repeat: same body, file name ""
               _JavaScript(None, body="var other = 1;")]
    context = {"script_files": scripts, "css_files": []}
    _ext()._drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[2], scripts[4]]
